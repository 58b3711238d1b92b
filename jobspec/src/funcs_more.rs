//! The rest of jobspec2's function table: encodings and hashes, sets, CIDR arithmetic, dates and
//! name-based UUIDs (go-cty's and go-cty-funcs' behaviour).

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;
// md-5 and sha1 are on digest 0.11, sha2 on 0.10: two traits of the same shape.
use sha1::Digest as _;

use super::eval::num_f;
use super::funcs::{FuncErr, fail, list, n, s, strs};

pub(crate) fn call(name: &str, a: Vec<Value>) -> Result<Value, FuncErr> {
    let text = |x: String| Ok(Value::String(x));
    match name {
        "base64encode" => text(base64::engine::general_purpose::STANDARD.encode(s(&a, 0)?)),
        "base64decode" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s(&a, 0)?)
                .or_else(|e| fail(format!("failed to decode base64 data: {e}")))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .or_else(|_| fail("the result of decoding the provided string is not valid UTF-8"))
        }
        "md5" => text(hex::encode(md5::Md5::digest(s(&a, 0)?))),
        "sha1" => text(hex::encode(sha1::Sha1::digest(s(&a, 0)?))),
        "sha256" => text(hex::encode(sha2::Sha256::digest(s(&a, 0)?))),
        "sha512" => text(hex::encode(sha2::Sha512::digest(s(&a, 0)?))),
        "strlen" => Ok(Value::from(s(&a, 0)?.chars().count())),
        "log" => Ok(num_f(n(&a, 0)?.ln() / n(&a, 1)?.ln())),
        "chunklist" => {
            let items = list(&a, 0)?;
            let size = n(&a, 1)?;
            if size < 0.0 {
                return fail("the size argument must be positive");
            }
            if size == 0.0 {
                return Ok(Value::Array(vec![Value::Array(items)]));
            }
            Ok(Value::Array(
                items
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "setunion" => {
            let mut out = Vec::new();
            for i in 0..a.len() {
                out.extend(list(&a, i)?);
            }
            Ok(Value::Array(as_set(out)))
        }
        "setintersection" => {
            let mut out = as_set(list(&a, 0)?);
            for i in 1..a.len() {
                let other = list(&a, i)?;
                out.retain(|v| other.contains(v));
            }
            Ok(Value::Array(out))
        }
        "setproduct" => {
            if a.len() < 2 {
                return fail("at least two arguments are required");
            }
            let mut rows: Vec<Vec<Value>> = vec![Vec::new()];
            for i in 0..a.len() {
                let items = list(&a, i)?;
                rows = rows
                    .into_iter()
                    .flat_map(|row| {
                        items.iter().map(move |item| {
                            let mut next = row.clone();
                            next.push(item.clone());
                            next
                        })
                    })
                    .collect();
                if rows.len() > 10_000 {
                    return fail("the product has more than 10000 elements");
                }
            }
            Ok(Value::Array(rows.into_iter().map(Value::Array).collect()))
        }
        "csvdecode" => csv_decode(&s(&a, 0)?),
        "uuidv5" => {
            let namespace = match s(&a, 0)?.as_str() {
                "dns" => uuid::Uuid::NAMESPACE_DNS,
                "url" => uuid::Uuid::NAMESPACE_URL,
                "oid" => uuid::Uuid::NAMESPACE_OID,
                "x500" => uuid::Uuid::NAMESPACE_X500,
                other => uuid::Uuid::parse_str(other).or_else(|e| {
                    fail(format!("uuidv5() doesn't support namespace {other} ({e})"))
                })?,
            };
            let mut hasher = sha1::Sha1::new();
            hasher.update(namespace.as_bytes());
            hasher.update(s(&a, 1)?.as_bytes());
            let digest = hasher.finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            text(
                uuid::Builder::from_sha1_bytes(bytes)
                    .into_uuid()
                    .to_string(),
            )
        }
        "cidrhost" => {
            let net = Cidr::parse(&s(&a, 0)?)?;
            let host = n(&a, 1)? as i128;
            let size = 1i128 << (net.width - net.prefix);
            let offset = if host < 0 { size + host } else { host };
            if offset < 0 || offset >= size {
                return fail(format!(
                    "prefix of {} does not accommodate a host numbered {host}",
                    net.prefix
                ));
            }
            text(net.addr_text(net.network() + offset as u128))
        }
        "cidrnetmask" => {
            let net = Cidr::parse(&s(&a, 0)?)?;
            if net.width != 32 {
                return fail("only IPv4 networks have a netmask");
            }
            text(net.addr_text(net.mask()))
        }
        "cidrsubnet" => {
            let net = Cidr::parse(&s(&a, 0)?)?;
            let (bits, num) = (n(&a, 1)? as u32, n(&a, 2)? as u128);
            text(net.subnet(bits, num)?)
        }
        "cidrsubnets" => {
            let net = Cidr::parse(&s(&a, 0)?)?;
            let mut next = net.network();
            let mut out = Vec::new();
            for i in 1..a.len() {
                let bits = n(&a, i)? as u32;
                let prefix = net.prefix + bits;
                if bits == 0 || prefix > net.width {
                    return fail(format!("invalid new bits {bits}"));
                }
                let step = 1u128 << (net.width - prefix);
                next = next.div_ceil(step) * step;
                if next >= net.network() + (1u128 << (net.width - net.prefix)) {
                    return fail("not enough remaining address space for a subnet");
                }
                out.push(Value::String(format!("{}/{prefix}", net.addr_text(next))));
                next += step;
            }
            Ok(Value::Array(out))
        }
        "timeadd" => {
            let at = timestamp(&s(&a, 0)?)?;
            let d = s(&a, 1)?;
            let (negative, rest) = match d.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, d.strip_prefix('+').unwrap_or(&d)),
            };
            let Some(d) = crate::duration::parse_go_duration(rest) else {
                return fail(format!("time: invalid duration {d:?}"));
            };
            let d = time::Duration::try_from(d).or_else(|e| fail(e.to_string()))?;
            let sum = if negative { at - d } else { at + d };
            rfc3339(sum)
        }
        "formatdate" => format_date(&s(&a, 0)?, timestamp(&s(&a, 1)?)?),
        "convert" => fail("convert() takes a type expression"),
        "bcrypt" | "rsadecrypt" => Err(FuncErr::Unsupported),
        _ => Err(FuncErr::Unknown),
    }
}

/// A cty set's elements in its order: unique, strings and numbers sorted.
fn as_set(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    if let Ok(mut texts) = strs(out.clone())
        && out.iter().all(Value::is_string)
    {
        texts.sort();
        return texts.into_iter().map(Value::String).collect();
    }
    if out.iter().all(Value::is_number) {
        out.sort_by(|x, y| {
            x.as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0))
        });
    }
    out
}

/// RFC 4180 text → a list of objects keyed by the header row.
fn csv_decode(text: &str) -> Result<Value, FuncErr> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return fail("extraneous or missing \" in quoted-field");
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return fail("missing header line");
    };
    let mut out = Vec::new();
    for (i, r) in rows.enumerate() {
        if r.len() != header.len() {
            return fail(format!("record on line {}: wrong number of fields", i + 2));
        }
        let record: Map<String, Value> = header
            .iter()
            .cloned()
            .zip(r.into_iter().map(Value::String))
            .collect();
        out.push(Value::Object(record));
    }
    Ok(Value::Array(out))
}

/// An IPv4 or IPv6 prefix, the address as an integer.
struct Cidr {
    addr: u128,
    prefix: u32,
    width: u32,
}

impl Cidr {
    fn parse(text: &str) -> Result<Cidr, FuncErr> {
        let bad = || FuncErr::Failed(format!("invalid CIDR expression: {text}"));
        let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
        let prefix: u32 = prefix.parse().map_err(|_| bad())?;
        let (addr, width) = match ip.parse::<Ipv4Addr>() {
            Ok(v4) => (u128::from(u32::from(v4)), 32),
            Err(_) => (u128::from(ip.parse::<Ipv6Addr>().map_err(|_| bad())?), 128),
        };
        if prefix > width {
            return Err(bad());
        }
        Ok(Cidr {
            addr,
            prefix,
            width,
        })
    }

    fn mask(&self) -> u128 {
        let all = if self.width == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        let host_bits = self.width - self.prefix;
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    fn network(&self) -> u128 {
        self.addr & self.mask()
    }

    fn addr_text(&self, addr: u128) -> String {
        if self.width == 32 {
            Ipv4Addr::from(addr as u32).to_string()
        } else {
            Ipv6Addr::from(addr).to_string()
        }
    }

    fn subnet(&self, bits: u32, num: u128) -> Result<String, FuncErr> {
        let prefix = self.prefix + bits;
        if prefix > self.width {
            return fail(format!(
                "insufficient address space to extend prefix of {} by {bits}",
                self.prefix
            ));
        }
        if bits < 128 && num >= (1u128 << bits) {
            return fail(format!(
                "prefix extension of {bits} does not accommodate a subnet numbered {num}"
            ));
        }
        let addr = self.network() | (num << (self.width - prefix));
        Ok(format!("{}/{prefix}", self.addr_text(addr)))
    }
}

fn timestamp(text: &str) -> Result<time::OffsetDateTime, FuncErr> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .or_else(|_| fail(format!("not a valid RFC3339 timestamp: {text:?}")))
}

fn rfc3339(t: time::OffsetDateTime) -> Result<Value, FuncErr> {
    t.format(&time::format_description::well_known::Rfc3339)
        .map(Value::String)
        .or_else(|e| fail(e.to_string()))
}

/// go-cty's `formatdate` spec: `YYYY MM DD hh mm ss …`, `'literal'`.
fn format_date(spec: &str, t: time::OffsetDateTime) -> Result<Value, FuncErr> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let Some(end) = chars[i + 1..].iter().position(|x| *x == '\'') else {
                return fail("unterminated literal '");
            };
            if end == 0 {
                out.push('\'');
            } else {
                out.extend(&chars[i + 1..i + 1 + end]);
            }
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|x| **x == c).count();
        let token: String = chars[i..i + run].iter().collect();
        let month = u8::from(t.month()) as usize;
        let weekday = t.weekday().to_string();
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let offset = t.offset();
        let (oh, om) = (offset.whole_hours(), offset.minutes_past_hour().abs());
        let piece = match token.as_str() {
            "YYYY" => format!("{:04}", t.year()),
            "YY" => format!("{:02}", t.year() % 100),
            "MMMM" => MONTHS[month - 1].to_string(),
            "MMM" => MONTHS[month - 1][..3].to_string(),
            "MM" => format!("{month:02}"),
            "M" => month.to_string(),
            "DD" => format!("{:02}", t.day()),
            "D" => t.day().to_string(),
            "EEEE" => weekday,
            "EEE" => weekday[..3].to_string(),
            "hh" => format!("{:02}", t.hour()),
            "h" => t.hour().to_string(),
            "HH" => format!("{hour12:02}"),
            "H" => hour12.to_string(),
            "AA" => if t.hour() < 12 { "AM" } else { "PM" }.to_string(),
            "aa" => if t.hour() < 12 { "am" } else { "pm" }.to_string(),
            "mm" => format!("{:02}", t.minute()),
            "m" => t.minute().to_string(),
            "ss" => format!("{:02}", t.second()),
            "s" => t.second().to_string(),
            "ZZZZZ" => format!("{:+03}:{om:02}", oh),
            "ZZZZ" => format!("{:+03}{om:02}", oh),
            "ZZZ" if offset.is_utc() => "UTC".to_string(),
            "ZZZ" => format!("{:+03}{om:02}", oh),
            "Z" if offset.is_utc() => "Z".to_string(),
            "Z" => format!("{:+03}:{om:02}", oh),
            other => return fail(format!("invalid date format verb {other:?}")),
        };
        out.push_str(&piece);
        i += run;
    }
    Ok(Value::String(out))
}

//! Commit signature verification (`repo.verify:` in drover.yaml): a fetched commit goes into
//! force only when it carries a Git SSH signature (namespace `git`) by a key listed in an
//! `allowed_signers` file, or an OpenPGP signature by a key (primary or signing subkey) of the
//! armoured `openpgp_keys` files. The signed data and the signature come from libgit2
//! (`extract_signature`), the SSHSIG check from RustCrypto's `ssh-key`, the OpenPGP check from
//! rPGP (`pgp`).

use std::path::PathBuf;

use git2::{Oid, Repository};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use serde::Deserialize;
use ssh_key::{HashAlg, PublicKey, SshSig};

/// The most commits `mode: all-new` checks in one fetch; more is refused rather than walked.
pub const MAX_NEW_COMMITS: usize = 1000;

/// `repo.verify:` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyPolicy {
    /// An OpenSSH `allowed_signers` file (`ssh-keygen -Y verify` format).
    #[serde(default)]
    pub ssh_allowed_signers: Option<PathBuf>,
    /// Files of armoured OpenPGP public keys (`.asc`, one or more keys each).
    #[serde(default)]
    pub openpgp_keys: Vec<PathBuf>,
    /// Which new commits are checked.
    #[serde(default)]
    pub mode: VerifyMode,
}

/// Which commits of a fetch are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// Only the fetched tip.
    #[default]
    Tip,
    /// Every commit reachable from the tip and not from the last verified revision.
    AllNew,
}

/// Why verification could not run or a commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The policy names no key source.
    #[error("no key source: set ssh_allowed_signers or openpgp_keys")]
    NoKeys,
    /// An OpenPGP key file is not understood.
    #[error("{path}: {message}")]
    OpenPgpKeys {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A key file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the allowed_signers file is not understood.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The commit was refused; `reason` is what the status shows.
    #[error("commit {short}: {reason}")]
    Refused {
        /// The commit's abbreviated id.
        short: String,
        /// Why, e.g. `no signature`, `signed by unknown key SHA256:…`.
        reason: String,
    },
    /// Reading the mirror failed.
    #[error("cannot check signatures of {what}: {source}")]
    Git {
        /// What was being read.
        what: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
}

/// One line of an allowed_signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The principals (as written, comma-separated patterns).
    pub principals: String,
    /// The namespaces the key may sign for (`None`: any).
    pub namespaces: Option<Vec<String>>,
    /// Unix seconds before which signatures are not valid.
    pub valid_after: Option<i64>,
    /// Unix seconds after which signatures are not valid.
    pub valid_before: Option<i64>,
    /// The key.
    pub key: PublicKey,
}

/// Parse an allowed_signers file's text (`principals [options] keytype base64 [comment]`).
/// Supported options: `namespaces="…"`, `valid-after="…"`, `valid-before="…"`; anything else
/// (`cert-authority` included) is refused so a key is never trusted more widely than written.
pub fn parse_allowed_signers(text: &str, path: &str) -> Result<Vec<AllowedSigner>, VerifyError> {
    let mut signers = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |message: String| VerifyError::Parse {
            path: path.to_string(),
            line: index + 1,
            message,
        };
        let (principals, rest) = split_field(line);
        if principals.is_empty() || rest.is_empty() {
            return Err(error("expected: principals [options] key-type key".into()));
        }
        let (mut namespaces, mut valid_after, mut valid_before) = (None, None, None);
        let key_text = if looks_like_key_type(rest) {
            rest
        } else {
            let (options, key_text) = split_field(rest);
            for option in split_options(options) {
                let (name, value) = match option.split_once('=') {
                    Some((name, value)) => (name, Some(value.trim_matches('"'))),
                    None => (option, None),
                };
                match (name.to_ascii_lowercase().as_str(), value) {
                    ("namespaces", Some(v)) => {
                        namespaces = Some(v.split(',').map(str::to_string).collect());
                    }
                    ("valid-after", Some(v)) => valid_after = Some(parse_time(v).map_err(error)?),
                    ("valid-before", Some(v)) => {
                        valid_before = Some(parse_time(v).map_err(error)?);
                    }
                    _ => return Err(error(format!("unsupported option {option:?}"))),
                }
            }
            key_text
        };
        let key = PublicKey::from_openssh(key_text)
            .map_err(|e| error(format!("cannot read the key: {e}")))?;
        signers.push(AllowedSigner {
            principals: principals.trim_matches('"').to_string(),
            namespaces,
            valid_after,
            valid_before,
            key,
        });
    }
    Ok(signers)
}

/// The first whitespace-separated field (double quotes keep spaces), and the rest trimmed.
fn split_field(text: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&text[..i], text[i..].trim_start()),
            _ => {}
        }
    }
    (text, "")
}

/// Options separated by commas outside double quotes.
fn split_options(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn looks_like_key_type(text: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|prefix| text.starts_with(prefix))
}

/// `YYYYMMDD[HHMM[SS]][Z]` as Unix seconds. ssh-keygen reads times without `Z` as local time;
/// drover reads every time as UTC (servers run in UTC) and says so in the README.
fn parse_time(text: &str) -> Result<i64, String> {
    let digits = text.strip_suffix('Z').unwrap_or(text);
    let bad = || format!("time {text:?} is not YYYYMMDD[HHMM[SS]][Z]");
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| -> i64 {
        digits.get(range).and_then(|s| s.parse().ok()).unwrap_or(0)
    };
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The keys a commit may be signed with: both sources together.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    /// From `ssh_allowed_signers`.
    pub ssh: Vec<AllowedSigner>,
    /// From `openpgp_keys`, every binding signature checked.
    pub openpgp: Vec<SignedPublicKey>,
}

/// Parse armoured OpenPGP public keys (one file may hold several). A key whose self-signatures
/// or subkey bindings do not verify is refused, so a subkey is never trusted on its own say.
pub fn parse_openpgp_keys(text: &str, path: &str) -> Result<Vec<SignedPublicKey>, VerifyError> {
    let error = |message: String| VerifyError::OpenPgpKeys {
        path: path.to_string(),
        message,
    };
    let (parsed, _headers) = SignedPublicKey::from_string_many(text)
        .map_err(|e| error(format!("not an armoured OpenPGP public key: {e}")))?;
    let mut keys = Vec::new();
    for key in parsed {
        let key = key.map_err(|e| error(format!("cannot read a key: {e}")))?;
        key.verify_bindings().map_err(|e| {
            error(format!(
                "key {} has a binding that does not verify: {e}",
                openpgp_fingerprint(&key.primary_key)
            ))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(error("no OpenPGP public key in the file".into()));
    }
    Ok(keys)
}

/// A key's fingerprint as GnuPG prints it (upper-case hex).
fn openpgp_fingerprint(key: &impl KeyDetails) -> String {
    format!("{:X}", key.fingerprint())
}

impl VerifyPolicy {
    /// Read the key files (at each check, so a rotated file needs no restart).
    pub fn load(&self) -> Result<TrustedKeys, VerifyError> {
        if self.ssh_allowed_signers.is_none() && self.openpgp_keys.is_empty() {
            return Err(VerifyError::NoKeys);
        }
        let read = |path: &std::path::Path| {
            let shown = path.display().to_string();
            std::fs::read_to_string(path)
                .map(|text| (text, shown.clone()))
                .map_err(|source| VerifyError::Read {
                    path: shown,
                    source,
                })
        };
        let mut keys = TrustedKeys::default();
        if let Some(path) = &self.ssh_allowed_signers {
            let (text, shown) = read(path)?;
            keys.ssh = parse_allowed_signers(&text, &shown)?;
        }
        for path in &self.openpgp_keys {
            let (text, shown) = read(path)?;
            keys.openpgp.extend(parse_openpgp_keys(&text, &shown)?);
        }
        Ok(keys)
    }

    /// Check the commits `tip` brings after `verified` (the revision in force, if any): the tip
    /// alone, or with `mode: all-new` every commit reachable from the tip and not from
    /// `verified` (newest first; an unrelated history is walked to its root, up to
    /// [`MAX_NEW_COMMITS`]). Without a verified revision only the tip is checked.
    pub fn check(
        &self,
        repo: &Repository,
        verified: Option<Oid>,
        tip: Oid,
    ) -> Result<(), VerifyError> {
        let keys = self.load()?;
        let git = |what: String| move |source| VerifyError::Git { what, source };
        let commits = match (self.mode, verified) {
            (VerifyMode::AllNew, Some(verified)) => {
                let mut walk = repo.revwalk().map_err(git("history".into()))?;
                walk.push(tip).map_err(git(format!("commit {tip}")))?;
                // A verified commit that is gone from the mirror hides nothing: walk it all.
                let _ = walk.hide(verified);
                let mut commits = Vec::new();
                for oid in walk {
                    let oid = oid.map_err(git("history".into()))?;
                    if commits.len() == MAX_NEW_COMMITS {
                        return Err(VerifyError::Refused {
                            short: short(tip),
                            reason: format!(
                                "more than {MAX_NEW_COMMITS} new commits since {} to check \
                                 (an unrelated history?)",
                                short(verified)
                            ),
                        });
                    }
                    commits.push(oid);
                }
                commits
            }
            _ => vec![tip],
        };
        // Oldest first, so the status names the first bad commit.
        for oid in commits.into_iter().rev() {
            check_commit(repo, oid, &keys)?;
        }
        Ok(())
    }
}

fn short(oid: Oid) -> String {
    oid.to_string().chars().take(7).collect()
}

/// Check one commit's `gpgsig` header against `keys`.
pub fn check_commit(repo: &Repository, oid: Oid, keys: &TrustedKeys) -> Result<(), VerifyError> {
    let signers = &keys.ssh;
    let refuse = |reason: String| VerifyError::Refused {
        short: short(oid),
        reason,
    };
    let (signature, signed) = match repo.extract_signature(&oid, Some("gpgsig")) {
        Ok(found) => found,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Err(refuse("no signature".into()));
        }
        Err(source) => {
            return Err(VerifyError::Git {
                what: format!("commit {oid}"),
                source,
            });
        }
    };
    let signature = String::from_utf8_lossy(&signature);
    if signature
        .trim_start()
        .starts_with("-----BEGIN PGP SIGNATURE-----")
    {
        return check_openpgp(&signature, &signed, &keys.openpgp).map_err(refuse);
    }
    let sig = SshSig::from_pem(signature.trim().as_bytes())
        .map_err(|e| refuse(format!("unreadable signature: {e}")))?;
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256);
    if sig.namespace() != "git" {
        return Err(refuse(format!(
            "signature by {fingerprint} is for namespace {:?}, not \"git\"",
            sig.namespace()
        )));
    }
    let committed = repo
        .find_commit(oid)
        .map_err(|source| VerifyError::Git {
            what: format!("commit {oid}"),
            source,
        })?
        .committer()
        .when()
        .seconds();
    let mut listed = false;
    for signer in signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
    {
        listed = true;
        let namespace_ok = signer
            .namespaces
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == "git"));
        let time_ok = signer.valid_after.is_none_or(|t| committed >= t)
            && signer.valid_before.is_none_or(|t| committed <= t);
        if !namespace_ok || !time_ok {
            continue;
        }
        return signer.key.verify("git", &signed, &sig).map_err(|e| {
            refuse(format!(
                "bad signature by {fingerprint} ({}): {e}",
                signer.principals
            ))
        });
    }
    Err(refuse(if listed {
        format!("key {fingerprint} is listed but not for namespace git at the commit's time")
    } else {
        format!("signed by unknown key {fingerprint}")
    }))
}

/// Check an armoured OpenPGP signature over `signed` against the listed keys (primary keys and
/// subkeys whose binding allows signing); the reason for a refusal otherwise.
fn check_openpgp(armour: &str, signed: &[u8], keys: &[SignedPublicKey]) -> Result<(), String> {
    let (signature, _headers) = DetachedSignature::from_string(armour.trim())
        .map_err(|e| format!("unreadable OpenPGP signature: {e}"))?;
    let issuer_fingerprints = signature.signature.issuer_fingerprint();
    let issuer_key_ids = signature.signature.issuer_key_id();
    let issued_by = |key: &dyn KeyDetails| {
        let fingerprint = key.fingerprint();
        let key_id = key.legacy_key_id();
        issuer_fingerprints.iter().any(|f| **f == fingerprint)
            || issuer_key_ids.iter().any(|k| **k == key_id)
    };
    let bad = |fingerprint: String| {
        move |e: pgp::errors::Error| format!("bad signature by OpenPGP key {fingerprint}: {e}")
    };
    for key in keys {
        if issued_by(&key.primary_key) {
            let fingerprint = openpgp_fingerprint(&key.primary_key);
            return signature
                .verify(&key.primary_key, signed)
                .map_err(bad(fingerprint));
        }
        for subkey in &key.public_subkeys {
            let may_sign = subkey.signatures.iter().any(|s| s.key_flags().sign());
            if may_sign && issued_by(&subkey.key) {
                let fingerprint = openpgp_fingerprint(&subkey.key);
                return signature.verify(subkey, signed).map_err(bad(fingerprint));
            }
        }
    }
    let issuer = issuer_fingerprints
        .first()
        .map(|f| format!("{f:X}"))
        .or_else(|| {
            issuer_key_ids
                .first()
                .map(|k| hex::encode_upper(k.as_ref()))
        })
        .unwrap_or_else(|| "(the signature names no issuer)".into());
    Err(format!("signed by unknown OpenPGP key {issuer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn allowed_signers_lines_with_and_without_options() {
        let text = format!(
            "# team\n\nalice@example.com {KEY} alice\n\
             \"bob@example.com,ci@*\" namespaces=\"git,file\",valid-after=\"20260101\",valid-before=\"20270101Z\" {KEY}\n"
        );
        let signers = parse_allowed_signers(&text, "f").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signers.len(), 2);
        assert_eq!(signers[0].principals, "alice@example.com");
        assert!(signers[0].namespaces.is_none() && signers[0].valid_after.is_none());
        assert_eq!(signers[1].principals, "bob@example.com,ci@*");
        assert_eq!(
            signers[1].namespaces,
            Some(vec!["git".to_string(), "file".to_string()])
        );
        assert_eq!(signers[1].valid_after, Some(1_767_225_600));
        assert_eq!(signers[1].valid_before, Some(1_798_761_600));
    }

    #[test]
    fn unsupported_options_and_broken_keys_are_refused_with_the_line() {
        let ca = format!("a@b\n\nx@y cert-authority {KEY}\n");
        let err = parse_allowed_signers(&ca, "signers")
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().starts_with("signers:1:"), "{err}");
        let ca = format!("x@y cert-authority {KEY}\n");
        let err = parse_allowed_signers(&ca, "signers")
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unsupported option \"cert-authority\""),
            "{err}"
        );
        let bad = "x@y ssh-ed25519 AAAAnotakey\n";
        let err = parse_allowed_signers(bad, "s").map(|_| ()).unwrap_err();
        assert!(
            err.to_string().starts_with("s:1: cannot read the key"),
            "{err}"
        );
        let time = format!("x@y valid-after=\"2026\" {KEY}\n");
        let err = parse_allowed_signers(&time, "s").map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("YYYYMMDD"), "{err}");
    }

    /// A new Ed25519 OpenPGP key that may sign with its primary key.
    fn openpgp_key(user: &str) -> pgp::composed::SignedSecretKey {
        let mut params = pgp::composed::SecretKeyParamsBuilder::default();
        params
            .key_type(pgp::composed::KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user.into());
        params
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .generate(rand08::thread_rng())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn openpgp_sign(key: &pgp::composed::SignedSecretKey, data: &[u8]) -> String {
        DetachedSignature::sign_binary_data(
            rand08::thread_rng(),
            &key.primary_key,
            &pgp::types::Password::empty(),
            pgp::crypto::hash::HashAlgorithm::Sha256,
            data,
        )
        .and_then(|s| s.to_armored_string(Default::default()))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn openpgp_signatures_by_listed_keys_only() {
        let listed = openpgp_key("listed <l@example.com>");
        let other = openpgp_key("other <o@example.com>");
        let armoured = listed
            .to_public_key()
            .to_armored_string(Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let keys = parse_openpgp_keys(&armoured, "k.asc").unwrap_or_else(|e| panic!("{e}"));
        let data = b"tree 0\n\nmsg\n";
        assert_eq!(
            check_openpgp(&openpgp_sign(&listed, data), data, &keys),
            Ok(())
        );
        let err = check_openpgp(&openpgp_sign(&listed, data), b"tampered", &keys).unwrap_err();
        let listed_fp = openpgp_fingerprint(&listed.primary_key);
        assert!(
            err.starts_with(&format!("bad signature by OpenPGP key {listed_fp}")),
            "{err}"
        );
        let err = check_openpgp(&openpgp_sign(&other, data), data, &keys).unwrap_err();
        let other_fp = openpgp_fingerprint(&other.primary_key);
        assert_eq!(err, format!("signed by unknown OpenPGP key {other_fp}"));
        let err = parse_openpgp_keys("not a key", "k.asc")
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().starts_with("k.asc: "), "{err}");
    }

    #[test]
    fn times_are_utc_seconds() {
        assert_eq!(parse_time("19700101"), Ok(0));
        assert_eq!(parse_time("20000301123456Z"), Ok(951_914_096));
        assert!(parse_time("20001301").is_err());
    }

    #[test]
    fn signed_data_is_the_commit_without_its_gpgsig_header() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = Repository::init_bare(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let tree = repo
            .treebuilder(None)
            .and_then(|b| b.write())
            .unwrap_or_else(|e| panic!("{e}"));
        let content = format!(
            "tree {tree}\nauthor A <a@b> 1700000000 +0000\ncommitter A <a@b> 1700000000 +0000\n\nmsg\n"
        );
        let armour = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----";
        let oid = repo
            .commit_signed(&content, armour, Some("gpgsig"))
            .unwrap_or_else(|e| panic!("{e}"));
        let (signature, signed) = repo
            .extract_signature(&oid, Some("gpgsig"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signed.as_str().ok(), Some(content.as_str()));
        assert_eq!(signature.as_str().ok(), Some(armour));
        // And a signature that does not parse is a refusal naming the commit, not a crash.
        let signers = TrustedKeys {
            ssh: parse_allowed_signers(&format!("a@b {KEY}"), "s").unwrap_or_default(),
            openpgp: Vec::new(),
        };
        let err = check_commit(&repo, oid, &signers).map(|_| ()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("commit {}: unreadable signature", short(oid))),
            "{err}"
        );
        let unsigned = repo
            .odb()
            .and_then(|odb| odb.write(git2::ObjectType::Commit, content.as_bytes()))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = check_commit(&repo, unsigned, &signers)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("commit {}: no signature", short(unsigned))
        );
    }
}

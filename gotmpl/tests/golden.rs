//! Golden tests: every `golden/cases/NAME.tpl` (+ `NAME.json` data) rendered by Go's text/template
//! with Sprig (see `golden/main.go`) gave `NAME.out` or `NAME.err`; we must give the same bytes
//! (for errors: the same `template: NAME:LINE[:COL]:` position and the same message). A case where
//! we knowingly differ has `NAME.expected-diff`: `#` lines explaining why, then a `---` line, then
//! exactly what we produce (an error as `error: MESSAGE`).

use std::fs;
use std::path::{Path, PathBuf};

use drover_gotmpl::{Delims, Error, FuncMap, MissingKey, TemplateSet, Value};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/cases")
}

fn case_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cases_dir())
        .expect("golden/cases exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".tpl"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

fn render(name: &str) -> Result<String, Error> {
    let dir = cases_dir();
    let text = fs::read_to_string(dir.join(format!("{name}.tpl"))).expect("case readable");
    let data: Value = match fs::read_to_string(dir.join(format!("{name}.json"))) {
        Ok(js) => serde_json::from_str(&js).expect("case data is JSON"),
        Err(_) => Value::Null,
    };
    let mut set = TemplateSet::new(
        Delims {
            left: "[[".into(),
            right: "]]".into(),
        },
        FuncMap::sprig(),
    );
    if text.starts_with("[[/* missingkey=zero */]]") {
        set.set_missing_key(MissingKey::Zero);
    } else if text.starts_with("[[/* missingkey=error */]]") {
        set.set_missing_key(MissingKey::Error);
    }
    set.parse(name, &text)?;
    set.execute(name, &data)
}

/// `template: NAME:LINE:COL:` or `template: NAME:LINE:` and the rest.
fn split_position(msg: &str) -> (String, String) {
    let mut parts = msg.splitn(5, ':');
    let mut prefix = Vec::new();
    for _ in 0..4 {
        match parts.next() {
            Some(p) => prefix.push(p.to_string()),
            None => break,
        }
    }
    // Keep the numeric position fields only.
    let mut keep = 2;
    while keep < prefix.len()
        && prefix[keep].chars().all(|c| c.is_ascii_digit())
        && !prefix[keep].is_empty()
    {
        keep += 1;
    }
    let head = prefix[..keep.min(prefix.len())].join(":");
    let rest = msg[head.len()..].trim_start_matches(':').trim().to_string();
    (head, rest)
}

#[test]
fn golden_cases_match_go() {
    let dir = cases_dir();
    let names = case_names();
    assert!(names.len() >= 150, "only {} golden cases", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let got = render(name);
        let got_text = match &got {
            Ok(s) => s.clone(),
            Err(e) => format!("error: {e}\n"),
        };
        if let Ok(note) = fs::read_to_string(dir.join(format!("{name}.expected-diff"))) {
            let expected = note.split_once("\n---\n").map(|(_, e)| e).unwrap_or("");
            if got_text != expected {
                failures.push(format!(
                    "{name} (expected-diff): got {got_text:?}, note says {expected:?}"
                ));
            }
            continue;
        }
        if let Ok(out) = fs::read_to_string(dir.join(format!("{name}.out"))) {
            if got_text != out {
                failures.push(format!("{name}: want {out:?}\n   got {got_text:?}"));
            }
        } else if let Ok(err) = fs::read_to_string(dir.join(format!("{name}.err"))) {
            let want = err.trim_end();
            match &got {
                Ok(s) => failures.push(format!("{name}: want error {want:?}\n   got output {s:?}")),
                Err(e) => {
                    let e = e.to_string();
                    let (wp, wr) = split_position(want);
                    let (gp, gr) = split_position(&e);
                    if wp != gp || wr != gr {
                        failures.push(format!("{name}: want error {want:?}\n   got error {e:?}"));
                    }
                }
            }
        } else {
            failures.push(format!("{name}: no .out or .err (run golden/main.go)"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

/// No panic on any input: every case truncated at every byte offset parses to Ok or Err.
#[test]
fn truncated_cases_never_panic() {
    let dir = cases_dir();
    for name in case_names() {
        let text = fs::read_to_string(dir.join(format!("{name}.tpl"))).expect("case readable");
        for cut in 0..=text.len() {
            let Some(prefix) = text.get(..cut) else {
                continue;
            };
            let mut set = TemplateSet::new(
                Delims {
                    left: "[[".into(),
                    right: "]]".into(),
                },
                FuncMap::sprig(),
            );
            if set.parse("t", prefix).is_ok() {
                let _ = set.execute("t", &Value::Null);
            }
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut text = String::new();
    for _ in 0..10_000 {
        text.push_str("[[ if true ]]");
    }
    for _ in 0..10_000 {
        text.push_str("[[ end ]]");
    }
    let mut set = TemplateSet::new(
        Delims {
            left: "[[".into(),
            right: "]]".into(),
        },
        FuncMap::new(),
    );
    let err = set
        .parse("deep", &text)
        .expect_err("10,000 nested ifs must be refused");
    assert!(err.to_string().contains("depth"), "{err}");

    let parens = format!("[[ {}1{} ]]", "(".repeat(10_000), ")".repeat(10_000));
    let err = set
        .parse("parens", &parens)
        .expect_err("10,000 nested parens must be refused");
    assert!(err.to_string().contains("depth"), "{err}");
}

#[test]
fn self_recursive_template_errors_instead_of_hanging() {
    let mut set = TemplateSet::new(Delims::default(), FuncMap::new());
    set.parse(
        "r",
        r#"{{ define "a" }}x{{ template "a" . }}{{ end }}{{ template "a" . }}"#,
    )
    .expect("parses");
    let err = set
        .execute("r", &Value::Null)
        .expect_err("unbounded recursion must fail");
    assert!(
        err.to_string().contains("exceeded maximum template depth"),
        "{err}"
    );
}

#[test]
fn output_size_is_capped() {
    let mut set = TemplateSet::new(Delims::default(), FuncMap::sprig());
    // 1 MiB string printed 100 times: over the 64 MiB cap.
    set.parse(
        "big",
        r#"{{ $s := repeat 1048576 "x" }}{{ range until 100 }}{{ $s }}{{ end }}"#,
    )
    .expect("parses");
    let err = set
        .execute("big", &Value::Null)
        .expect_err("output over the cap must fail");
    assert!(err.to_string().contains("output exceeds"), "{err}");
}

#[test]
fn huge_integer_range_errors_instead_of_spinning() {
    let mut set = TemplateSet::new(Delims::default(), FuncMap::new());
    set.parse("spin", "{{ range 1000000000000 }}{{ end }}")
        .expect("parses");
    let err = set
        .execute("spin", &Value::Null)
        .expect_err("a trillion iterations must fail");
    assert!(err.to_string().contains("steps"), "{err}");
}

/// Random templates made of template syntax fragments: parse and execute never panic.
#[test]
fn random_fragment_soup_never_panics() {
    const FRAGMENTS: &[&str] = &[
        "[[",
        "]]",
        "[[-",
        "-]]",
        " ",
        "\n",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        ".",
        ".a",
        ".list",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2",
        "1.5",
        "0x1p4",
        "nil",
        "true",
        "printf",
        "\"%d %s %v\"",
        "index",
        "slice",
        "len",
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "default",
        "quote",
        "toJson",
        "upper",
        "until",
        "repeat",
        "dict",
        "list",
        "set",
        "/*",
        "*/",
        "{{",
        "}}",
        "é",
        "substr",
        "trunc",
        "fail",
        "div",
        "0",
        "-1",
        ",",
    ];
    let data = serde_json::json!({"a": {"b": 1}, "list": [1, "x", null, [2]], "s": "héllo"});
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let mut text = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 24) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(FRAGMENTS[(seed % FRAGMENTS.len() as u64) as usize]);
        }
        let mut set = TemplateSet::new(
            Delims {
                left: "[[".into(),
                right: "]]".into(),
            },
            FuncMap::sprig(),
        );
        if set.parse("t", &text).is_ok() {
            let _ = set.execute("t", &data);
        }
    }
}

#[test]
fn self_nesting_values_error_instead_of_overflowing_the_stack() {
    let mut set = TemplateSet::new(Delims::default(), FuncMap::sprig());
    set.parse(
        "nest",
        r#"{{ $d := dict }}{{ range until 100000 }}{{ $d = dict "a" $d }}{{ end }}{{ $d }}"#,
    )
    .expect("parses");
    let err = set
        .execute("nest", &Value::Null)
        .expect_err("100,000 levels must be refused");
    assert!(err.to_string().contains("nests deeper than"), "{err}");
}

#[test]
fn template_sets_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<TemplateSet>();
    assert_send_sync::<FuncMap>();
}

#[test]
fn string_builders_refuse_results_over_the_output_cap() {
    let mut set = TemplateSet::new(Delims::default(), FuncMap::sprig());
    for (name, text) in [
        (
            "indent",
            r#"{{ $s := repeat 1000000 "\n" }}{{ indent 1000 $s }}"#,
        ),
        (
            "replace",
            r#"{{ $s := repeat 1000000 "a" }}{{ replace "a" (repeat 1000 "b") $s }}"#,
        ),
        ("width", r#"{{ printf "%*d" 1000000000000 1 | len }}"#),
    ] {
        set.parse(name, text).expect("parses");
        match set.execute(name, &Value::Null) {
            Err(e) => assert!(e.to_string().contains("exceeds"), "{name}: {e}"),
            Ok(out) => assert!(out.len() < 2_000_000, "{name}: {} bytes", out.len()),
        }
    }
}

#[test]
fn quadratic_list_growth_meets_the_step_cap() {
    let mut set = TemplateSet::new(Delims::default(), FuncMap::sprig());
    set.parse(
        "grow",
        r#"{{ $l := list }}{{ range until 1000000 }}{{ $l = append $l . }}{{ end }}{{ len $l }}"#,
    )
    .expect("parses");
    let err = set
        .execute("grow", &Value::Null)
        .expect_err("a million appends must be refused");
    assert!(err.to_string().contains("steps"), "{err}");
}

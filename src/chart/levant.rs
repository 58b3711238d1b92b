//! Levant templates: a jobspec with `[[ .name ]]` actions (Go templates, `[[ ]]` delimiters, Sprig)
//! rendered with the values of YAML/JSON var files, as `levant render -var-file F` does. An app
//! uses it with `nomad_job: { file: job.nomad, levant: { var_files: [vars.yaml] } }`.

use std::sync::Arc;

use drover_gotmpl::{Delims, FuncMap, MissingKey, TemplateSet, Value};

use super::ChartError;

/// Merge var files (later ones win, key by key at the top level) into the template data.
pub fn merge_var_files(files: &[(String, String)]) -> Result<Value, ChartError> {
    let mut data = serde_json::Map::new();
    for (name, text) in files {
        let value: Value = if name.to_ascii_lowercase().ends_with(".json") {
            serde_json::from_str(text)
                .map_err(|e| ChartError::new(name, e.line(), e.to_string()))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                ChartError::new(name, e.location().map_or(0, |l| l.line()), e.to_string())
            })?
        };
        match value {
            Value::Object(m) => data.extend(m),
            Value::Null => {}
            _ => return Err(ChartError::new(name, 1, "a Levant var file is a mapping")),
        }
    }
    Ok(Value::Object(data))
}

/// Render a Levant template `file` (`text`) with `data`. A key the data lacks is an error naming
/// it (Levant's default), not an empty string in the job.
pub fn render(file: &str, text: &str, data: &Value) -> Result<String, ChartError> {
    let mut funcs = FuncMap::sprig();
    // Levant's own names for two Sprig functions.
    funcs.insert(
        "toUpper",
        Arc::new(|args: &[Value]| match args.first() {
            Some(Value::String(s)) => Ok(Value::String(s.to_uppercase())),
            _ => Err("toUpper takes a string".into()),
        }),
    );
    funcs.insert(
        "toLower",
        Arc::new(|args: &[Value]| match args.first() {
            Some(Value::String(s)) => Ok(Value::String(s.to_lowercase())),
            _ => Err("toLower takes a string".into()),
        }),
    );
    let mut set = TemplateSet::new(
        Delims {
            left: "[[".into(),
            right: "]]".into(),
        },
        funcs,
    );
    set.set_missing_key(MissingKey::Error);
    let located = |e: drover_gotmpl::Error| {
        let message = e.to_string();
        let line = message
            .strip_prefix("template: ")
            .and_then(|m| m.strip_prefix(file))
            .and_then(|m| m.strip_prefix(':'))
            .and_then(|m| m.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        ChartError::new(file, line, message)
    };
    set.parse(file, text).map_err(located)?;
    set.execute(file, data).map_err(located)
}

//! One module per command group.

pub mod admin;
pub mod catalog;
pub mod login;
pub mod models;
pub mod records;
pub mod status;
pub mod validate;

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::error::CliError;

/// Reads JSON from a file, or from stdin for `-` or no file.
pub fn read_json_input(file: Option<&Path>) -> Result<Value, CliError> {
    let (text, name) = match file {
        Some(path) if path != Path::new("-") => (
            std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?,
            path.display().to_string(),
        ),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
            (text, "stdin".to_string())
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{name} is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Accepts a bare payload object or a `{"payload": {...}}` request body; returns the payload.
pub fn payload_of(value: Value) -> Result<Value, CliError> {
    match value {
        Value::Object(mut map) if map.len() == 1 && map.get("payload").is_some_and(Value::is_object) => {
            Ok(map.remove("payload").expect("checked"))
        }
        Value::Object(map) => Ok(Value::Object(map)),
        _ => Err(CliError::Usage("the payload must be a JSON object".into())),
    }
}

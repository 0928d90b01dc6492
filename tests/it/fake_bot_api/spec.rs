//! The official Bot API description (`tests/data/bot-api-10.1.json`) and the generic checks
//! derived from it: known methods, known parameters, required parameters and JSON types.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

const SPEC_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bot-api-10.1.json"));

/// How deep nested objects are checked; deeper values are accepted as they are.
const MAX_DEPTH: usize = 12;

#[derive(Debug, Deserialize)]
pub struct Spec {
    pub version: String,
    pub methods: HashMap<String, MethodSpec>,
    pub types: HashMap<String, TypeSpec>,
    #[serde(skip)]
    lowercase: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct MethodSpec {
    pub name: String,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    #[serde(default)]
    pub returns: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub types: Vec<String>,
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
pub struct TypeSpec {
    pub name: String,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    #[serde(default)]
    pub subtypes: Vec<String>,
}

/// The parsed specification, loaded once per test binary.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let mut spec: Spec = serde_json::from_str(SPEC_JSON).expect("tests/data/bot-api-10.1.json is not valid");
        spec.lowercase = spec.methods.keys().map(|name| (name.to_ascii_lowercase(), name.clone())).collect();
        spec
    })
}

impl Spec {
    /// Looks a method up like Telegram does: method names are case-insensitive.
    pub fn method(&self, name: &str) -> Option<&MethodSpec> {
        let canonical = self.lowercase.get(&name.to_ascii_lowercase())?;
        self.methods.get(canonical)
    }

    pub fn type_spec(&self, name: &str) -> Option<&TypeSpec> {
        self.types.get(name)
    }

    /// Checks one value against a single spec type such as `Integer`, `Array of String`
    /// or `InlineKeyboardMarkup`. `path` names the value in error messages.
    pub fn check_type(&self, value: &Value, ty: &str, path: &str, depth: usize) -> Result<(), String> {
        let mismatch = || Err(format!("{path} must be of type {ty}"));
        match ty {
            "Integer" => {
                if value.is_i64() || value.is_u64() {
                    Ok(())
                } else {
                    mismatch()
                }
            }
            "Float" | "Float number" => {
                if value.is_number() {
                    Ok(())
                } else {
                    mismatch()
                }
            }
            "String" => {
                if value.is_string() {
                    Ok(())
                } else {
                    mismatch()
                }
            }
            "Boolean" => {
                if value.is_boolean() {
                    Ok(())
                } else {
                    mismatch()
                }
            }
            "True" => {
                if value == &Value::Bool(true) {
                    Ok(())
                } else {
                    mismatch()
                }
            }
            // In a JSON body a file can only be a file_id, a URL or an "attach://<part>".
            "InputFile" => {
                if value.is_string() {
                    Ok(())
                } else {
                    mismatch()
                }
            }
            _ => {
                if let Some(inner) = ty.strip_prefix("Array of ") {
                    let Some(items) = value.as_array() else {
                        return mismatch();
                    };
                    if depth >= MAX_DEPTH {
                        return Ok(());
                    }
                    for (i, item) in items.iter().enumerate() {
                        self.check_type(item, inner, &format!("{path}[{i}]"), depth + 1)?;
                    }
                    return Ok(());
                }
                let Some(type_spec) = self.types.get(ty) else {
                    // A type the description does not define: nothing to check against.
                    return Ok(());
                };
                if !value.is_object() {
                    return Err(format!("{path} must be an object of type {ty}"));
                }
                if depth >= MAX_DEPTH {
                    return Ok(());
                }
                if type_spec.subtypes.is_empty() {
                    self.check_object(value, type_spec, path, depth)
                } else {
                    self.check_abstract(value, type_spec, path, depth)
                }
            }
        }
    }

    /// Checks a value against a list of alternative types (a field's `types`).
    pub fn check_types(&self, value: &Value, types: &[String], path: &str, depth: usize) -> Result<(), String> {
        let mut errors = Vec::new();
        for ty in types {
            match self.check_type(value, ty, path, depth) {
                Ok(()) => return Ok(()),
                Err(e) => errors.push((ty, e)),
            }
        }
        // Prefer the explanation from the one object type the value looks like: a type with
        // fields whose required fields are all there, or else the only object type.
        if let Some(object) = value.as_object() {
            let objecty: Vec<_> = errors.iter().filter(|(ty, _)| self.types.contains_key(ty.as_str())).collect();
            let plausible: Vec<_> = objecty
                .iter()
                .filter(|(ty, _)| {
                    let t = &self.types[ty.as_str()];
                    t.subtypes.is_empty() && t.fields.iter().filter(|f| f.required).all(|f| object.contains_key(&f.name))
                })
                .collect();
            if plausible.len() == 1 {
                return Err(plausible[0].1.clone());
            }
            if objecty.len() == 1 {
                return Err(objecty[0].1.clone());
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0).1);
        }
        Err(format!("{path} must be of type {}", types.iter().map(String::as_str).collect::<Vec<_>>().join(" or ")))
    }

    fn check_object(&self, value: &Value, type_spec: &TypeSpec, path: &str, depth: usize) -> Result<(), String> {
        let object = value.as_object().expect("checked by the caller");
        for (key, field_value) in object {
            if field_value.is_null() {
                continue;
            }
            let Some(field) = type_spec.fields.iter().find(|f| &f.name == key) else {
                return Err(format!("can't parse {}: unknown field \"{key}\" in {path}", type_spec.name));
            };
            self.check_types(field_value, &field.types, &format!("{path}.{key}"), depth + 1)?;
        }
        for field in type_spec.fields.iter().filter(|f| f.required) {
            if object.get(&field.name).is_none_or(Value::is_null) {
                return Err(format!("can't parse {}: field \"{}\" is required in {path}", type_spec.name, field.name));
            }
        }
        Ok(())
    }

    /// An abstract type (`BotCommandScope`, `InlineQueryResult`, ...): the value must be one of
    /// its subtypes. A `type` field selects the candidates by the "must be X" in the description.
    fn check_abstract(&self, value: &Value, type_spec: &TypeSpec, path: &str, depth: usize) -> Result<(), String> {
        let mut candidates: Vec<&String> = type_spec.subtypes.iter().collect();
        if let Some(kind) = value.get("type").and_then(Value::as_str) {
            let wanted = format!("must be {kind}");
            let selected: Vec<&String> = candidates
                .iter()
                .copied()
                .filter(|sub| {
                    self.types.get(sub.as_str()).is_some_and(|t| {
                        t.fields.iter().any(|f| {
                            f.name == "type"
                                && (f.description.ends_with(&wanted)
                                    || f.description.contains(&format!("{wanted},"))
                                    || f.description.contains(&format!("{wanted} ")))
                        })
                    })
                })
                .collect();
            if selected.is_empty() {
                return Err(format!("can't parse {}: unsupported type \"{kind}\" in {path}", type_spec.name));
            }
            candidates = selected;
        }
        let mut first_error = None;
        for sub in &candidates {
            match self.check_type(value, sub, path, depth) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if candidates.len() == 1 {
            return Err(first_error.unwrap_or_default());
        }
        Err(format!("can't parse {}: {path} matches none of its subtypes", type_spec.name))
    }

    /// Converts the textual value of a form field (multipart or urlencoded) into JSON, guided
    /// by the parameter's types: numbers and booleans are parsed, objects and arrays are JSON.
    pub fn coerce_form_value(&self, field: Option<&FieldSpec>, raw: &str) -> Value {
        let Some(field) = field else {
            return Value::String(raw.to_owned());
        };
        for ty in &field.types {
            match ty.as_str() {
                "Integer" => {
                    if let Ok(n) = raw.trim().parse::<i64>() {
                        return Value::from(n);
                    }
                }
                "Float" | "Float number" => {
                    if let Ok(n) = raw.trim().parse::<f64>()
                        && let Some(n) = serde_json::Number::from_f64(n)
                    {
                        return Value::Number(n);
                    }
                }
                "Boolean" | "True" => match raw.trim() {
                    "true" | "True" => return Value::Bool(true),
                    "false" | "False" => return Value::Bool(false),
                    _ => {}
                },
                "String" | "InputFile" => {}
                _ => {
                    if let Ok(v) = serde_json::from_str::<Value>(raw)
                        && (v.is_object() || v.is_array())
                    {
                        return v;
                    }
                }
            }
        }
        Value::String(raw.to_owned())
    }
}

impl MethodSpec {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn returns_only_boolean(&self) -> bool {
        self.returns == ["Boolean"]
    }

    /// The generic checks every request goes through: no unknown parameter, every required
    /// parameter present, every parameter of a documented type. `null` counts as absent.
    pub fn validate(&self, params: &mut Map<String, Value>) -> Result<(), String> {
        params.retain(|_, v| !v.is_null());
        for key in params.keys() {
            if self.field(key).is_none() {
                return Err(format!("Bad Request: unknown parameter {key}"));
            }
        }
        for field in self.fields.iter().filter(|f| f.required) {
            if !params.contains_key(&field.name) {
                return Err(if field.name == "text" {
                    "Bad Request: message text is empty".to_owned()
                } else {
                    format!("Bad Request: parameter {} is required", field.name)
                });
            }
        }
        let spec = spec();
        for (key, value) in params.iter() {
            let field = self.field(key).expect("checked above");
            spec.check_types(value, &field.types, key, 0).map_err(|e| format!("Bad Request: {e}"))?;
        }
        Ok(())
    }
}

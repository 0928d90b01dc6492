//! A reader over spanned TOML that turns every problem into a `path:line:col` diagnostic and keeps going.
//!
//! Content files are parsed with `toml::de::DeTable`, which keeps byte spans for every key and value.
//! `Table` hands out typed values and remembers which keys were read, so `finish` can report every
//! unknown key of a table (with a "did you mean" hint) instead of stopping at the first one.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in one content file, shown as `path:line:col: message`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// A position in a content file, 1-based.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub path: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.col)
    }
}

/// A content file being read: its path, its text and the diagnostics found so far.
pub struct File<'s> {
    pub path: &'s str,
    pub text: &'s str,
    /// The byte offset where each line starts, so that a position costs a search, not a count
    /// from the top (a file of thousands of cue phrases gives every phrase a position).
    line_starts: Vec<usize>,
    diags: RefCell<Vec<Diagnostic>>,
}

impl<'s> File<'s> {
    pub fn new(path: &'s str, text: &'s str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        File { path, text, line_starts, diags: RefCell::new(Vec::new()) }
    }

    /// The position of a byte offset.
    pub fn loc(&self, offset: usize) -> Loc {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let col = self.text.get(line_start..offset).map_or(0, |t| t.chars().count()) + 1;
        Loc { path: self.path.to_string(), line, col }
    }

    pub fn error(&self, span: &Range<usize>, message: impl Into<String>) {
        let loc = self.loc(span.start);
        self.diags.borrow_mut().push(Diagnostic { loc, message: message.into() });
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diags.into_inner()
    }

    /// Parses the whole file; syntax errors become diagnostics and `None`.
    pub fn parse(&self) -> Option<Spanned<DeTable<'s>>> {
        let (table, errors) = DeTable::parse_recoverable(self.text);
        if errors.is_empty() {
            return Some(table);
        }
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            let message = error.message().trim().trim_end_matches('.').to_string();
            self.error(&span, format!("invalid TOML: {message}"));
        }
        None
    }
}

/// A value with its span, as read from a file.
pub type Value<'s> = Spanned<DeValue<'s>>;

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// A table being read: hands out values by key and reports the keys nobody asked for.
pub struct Table<'f, 's> {
    pub file: &'f File<'s>,
    pub span: Range<usize>,
    table: &'f DeTable<'s>,
    used: RefCell<Vec<String>>,
}

impl<'f, 's> Table<'f, 's> {
    pub fn new(file: &'f File<'s>, value: &'f Value<'s>, what: &str) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(table) => Some(Table { file, span: value.span(), table, used: RefCell::new(Vec::new()) }),
            other => {
                file.error(&value.span(), format!("{what} must be a table, found {}", type_name(other)));
                None
            }
        }
    }

    pub fn root(file: &'f File<'s>, table: &'f Spanned<DeTable<'s>>) -> Self {
        Table { file, span: table.span(), table: table.get_ref(), used: RefCell::new(Vec::new()) }
    }

    pub fn loc(&self) -> Loc {
        self.file.loc(self.span.start)
    }

    /// The raw value of a key, marking the key as known.
    pub fn get(&self, key: &str) -> Option<&'f Value<'s>> {
        self.used.borrow_mut().push(key.to_string());
        self.table.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }

    /// Every entry of the table, for tables keyed by id; marks nothing.
    pub fn entries(&self) -> impl Iterator<Item = (&'f Spanned<std::borrow::Cow<'s, str>>, &'f Value<'s>)> {
        self.table.iter()
    }

    fn missing(&self, key: &str) {
        self.file.error(&self.span, format!("missing required key `{key}`"));
    }

    fn wrong(&self, key: &str, value: &Value<'s>, expected: &str) {
        self.file.error(&value.span(), format!("`{key}` must be {expected}, found {}", type_name(value.get_ref())));
    }

    pub fn str(&self, key: &'static str) -> Option<Spanned<String>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
            _ => {
                self.wrong(key, value, "a string");
                None
            }
        }
    }

    pub fn req_str(&self, key: &'static str) -> Option<Spanned<String>> {
        if self.get(key).is_none() {
            self.missing(key);
            return None;
        }
        self.str(key)
    }

    pub fn bool(&self, key: &'static str) -> Option<bool> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong(key, value, "true or false");
                None
            }
        }
    }

    pub fn int(&self, key: &'static str) -> Option<Spanned<i64>> {
        let value = self.get(key)?;
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.wrong(key, value, "a whole number");
        }
        parsed.map(|i| Spanned::new(value.span(), i))
    }

    /// A date such as `2026-11-28`, returned as written.
    pub fn date(&self, key: &'static str) -> Option<Spanned<String>> {
        let Some(value) = self.get(key) else {
            self.missing(key);
            return None;
        };
        match value.get_ref() {
            DeValue::Datetime(d) if d.date.is_some() && d.time.is_none() => Some(Spanned::new(value.span(), d.to_string())),
            _ => {
                self.wrong(key, value, "a date like 2026-11-28");
                None
            }
        }
    }

    /// A list of strings; a single string is not accepted, to keep files uniform.
    pub fn str_list(&self, key: &'static str) -> Option<Vec<Spanned<String>>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(key, value, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                other => self.file.error(&item.span(), format!("`{key}` must hold strings, found {}", type_name(other))),
            }
        }
        Some(out)
    }

    pub fn int_list(&self, key: &'static str) -> Option<Vec<Spanned<i64>>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(key, value, "a list of numbers");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Integer(i) => match i.as_str().replace('_', "").parse() {
                    Ok(n) => out.push(Spanned::new(item.span(), n)),
                    Err(_) => self.file.error(&item.span(), format!("`{key}` holds a number that is too large")),
                },
                other => self.file.error(&item.span(), format!("`{key}` must hold numbers, found {}", type_name(other))),
            }
        }
        Some(out)
    }

    pub fn table(&self, key: &'static str) -> Option<Table<'f, 's>> {
        let value = self.get(key)?;
        Table::new(self.file, value, &format!("`{key}`"))
    }

    /// A list of tables (`[[key]]` or `key = [{...}]`).
    pub fn table_list(&self, key: &'static str) -> Vec<Table<'f, 's>> {
        let Some(value) = self.get(key) else { return Vec::new() };
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong(key, value, "a list of tables");
            return Vec::new();
        };
        items.iter().filter_map(|item| Table::new(self.file, item, &format!("an item of `{key}`"))).collect()
    }

    /// A text per language: `key.en = "..."`, read as a table of language codes.
    pub fn lang_text(&self, key: &'static str) -> Option<Spanned<BTreeMap<String, String>>> {
        let table = self.table(key)?;
        let mut out = BTreeMap::new();
        for (lang, value) in table.entries() {
            match value.get_ref() {
                DeValue::String(s) => {
                    out.insert(lang.get_ref().to_string(), s.to_string());
                }
                other => self
                    .file
                    .error(&value.span(), format!("`{key}.{lang}` must be a string, found {}", type_name(other), lang = lang.get_ref())),
            }
        }
        Some(Spanned::new(table.span.clone(), out))
    }

    /// A list of words per language: `key.en = ["...", "..."]`.
    pub fn lang_list(&self, key: &'static str) -> BTreeMap<String, Vec<Spanned<String>>> {
        let mut out = BTreeMap::new();
        let Some(table) = self.table(key) else { return out };
        for (lang, value) in table.entries() {
            let DeValue::Array(items) = value.get_ref() else {
                self.file.error(&value.span(), format!("`{key}.{}` must be a list of strings", lang.get_ref()));
                continue;
            };
            let mut words = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => words.push(Spanned::new(item.span(), s.to_string())),
                    other => {
                        self.file.error(&item.span(), format!("`{key}.{}` must hold strings, found {}", lang.get_ref(), type_name(other)))
                    }
                }
            }
            out.insert(lang.get_ref().to_string(), words);
        }
        out
    }

    /// Reports every key that no reader asked for, with a hint when one is close to a known key.
    pub fn finish(self) {
        let used = self.used.into_inner();
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if used.iter().any(|u| u == name) {
                continue;
            }
            let hint = did_you_mean(name, used.iter().map(String::as_str));
            self.file.error(&key.span(), format!("unknown key `{name}`{hint}"));
        }
    }
}

/// `, did you mean `x`?` when one candidate is close to `word`, else empty.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(word, candidate);
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    match best {
        Some((_, candidate)) => format!(", did you mean `{candidate}`?"),
        None => String::new(),
    }
}

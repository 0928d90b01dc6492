//! Message formatting as Telegram parses it: `parse_mode` HTML, MarkdownV2 and legacy Markdown
//! turned into the plain text the user sees plus entities (offsets in UTF-16 code units), with
//! "can't parse entities" errors for malformed markup.

use serde_json::{Value, json};

/// Text after entity parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub text: String,
    pub entities: Vec<Value>,
}

impl Parsed {
    /// Length in Unicode scalar values, which is what the fake compares against the limits.
    pub fn char_len(&self) -> usize {
        self.text.chars().count()
    }

    /// Telegram refuses messages that are empty after parsing and trimming.
    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }
}

/// Parses `text` according to `parse_mode` (`None` or empty: plain text).
pub fn parse(text: &str, parse_mode: Option<&str>) -> Result<Parsed, String> {
    match parse_mode {
        None | Some("") => Ok(Parsed { text: text.to_owned(), entities: Vec::new() }),
        Some(mode) if mode.eq_ignore_ascii_case("html") => parse_html(text),
        Some(mode) if mode.eq_ignore_ascii_case("markdownv2") => parse_markdown(text, true),
        Some(mode) if mode.eq_ignore_ascii_case("markdown") => parse_markdown(text, false),
        Some(other) => Err(format!("Bad Request: unsupported parse_mode \"{other}\"")),
    }
}

fn entities_error(message: String) -> String {
    format!("Bad Request: can't parse entities: {message}")
}

/// Tags Telegram accepts in HTML mode.
const HTML_TAGS: &[&str] =
    &["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji"];

struct OpenTag {
    name: String,
    start: usize,
    entity: Option<Value>,
}

fn parse_html(src: &str) -> Result<Parsed, String> {
    let mut text = String::new();
    let mut offset = 0usize; // UTF-16 code units emitted so far
    let mut stack: Vec<OpenTag> = Vec::new();
    let mut entities = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        let c = rest.chars().next().expect("i is on a char boundary");
        match c {
            '<' => {
                let Some(close) = find_tag_end(rest) else {
                    return Err(entities_error(format!("Unclosed start tag at byte offset {i}")));
                };
                let inner = &rest[1..close];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim_end().to_ascii_lowercase();
                    let Some(open) = stack.pop() else {
                        return Err(entities_error(format!("Unexpected end tag at byte offset {i}")));
                    };
                    if open.name != name {
                        return Err(entities_error(format!(
                            "Unmatched end tag at byte offset {i}, expected \"</{}>\", found \"</{name}>\"",
                            open.name
                        )));
                    }
                    if let Some(mut entity) = open.entity
                        && offset > open.start
                    {
                        entity["offset"] = json!(open.start);
                        entity["length"] = json!(offset - open.start);
                        entities.push(entity);
                    }
                } else {
                    let name_end = inner.find(|ch: char| ch.is_ascii_whitespace()).unwrap_or(inner.len());
                    let name = inner[..name_end].to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(entities_error(format!("Unsupported start tag \"{name}\" at byte offset {i}")));
                    }
                    let attrs = parse_attributes(&inner[name_end..]).map_err(|m| entities_error(format!("{m} at byte offset {i}")))?;
                    let attr = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
                    let entity = match name.as_str() {
                        "b" | "strong" => Some(json!({"type": "bold"})),
                        "i" | "em" => Some(json!({"type": "italic"})),
                        "u" | "ins" => Some(json!({"type": "underline"})),
                        "s" | "strike" | "del" => Some(json!({"type": "strikethrough"})),
                        "tg-spoiler" => Some(json!({"type": "spoiler"})),
                        "span" => {
                            if attr("class") != Some("tg-spoiler") {
                                return Err(entities_error(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {i}")));
                            }
                            Some(json!({"type": "spoiler"}))
                        }
                        "a" => match attr("href") {
                            Some(href) if href.starts_with("http://") || href.starts_with("https://") || href.starts_with("tg://") => {
                                Some(json!({"type": "text_link", "url": href}))
                            }
                            // Telegram drops links it cannot use; the text stays.
                            _ => None,
                        },
                        "code" => {
                            if let Some(pre) = stack.last_mut().filter(|open| open.name == "pre") {
                                if let (Some(entity), Some(lang)) =
                                    (pre.entity.as_mut(), attr("class").and_then(|c| c.strip_prefix("language-")))
                                {
                                    entity["language"] = json!(lang);
                                }
                                None
                            } else {
                                Some(json!({"type": "code"}))
                            }
                        }
                        "pre" => Some(json!({"type": "pre"})),
                        "blockquote" => Some(if attr("expandable").is_some() {
                            json!({"type": "expandable_blockquote"})
                        } else {
                            json!({"type": "blockquote"})
                        }),
                        "tg-emoji" => match attr("emoji-id") {
                            Some(id) if !id.is_empty() => Some(json!({"type": "custom_emoji", "custom_emoji_id": id})),
                            _ => {
                                return Err(entities_error(format!(
                                    "Tag \"tg-emoji\" must have attribute \"emoji-id\" at byte offset {i}"
                                )));
                            }
                        },
                        _ => None,
                    };
                    stack.push(OpenTag { name, start: offset, entity });
                }
                i += close + 1;
            }
            '&' => {
                let Some((ch, len)) = decode_entity(rest) else {
                    return Err(entities_error(format!("Character '&' at byte offset {i} is not a part of an HTML entity; use &amp;")));
                };
                text.push(ch);
                offset += ch.len_utf16();
                i += len;
            }
            _ => {
                text.push(c);
                offset += c.len_utf16();
                i += c.len_utf8();
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(entities_error(format!("Can't find end tag corresponding to start tag \"{}\"", open.name)));
    }
    sort_entities(&mut entities);
    Ok(Parsed { text, entities })
}

/// Byte index of the `>` closing the tag that starts `rest`, skipping quoted attribute values.
fn find_tag_end(rest: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in rest.char_indices().skip(1) {
        match (quote, c) {
            (None, '>') => return Some(i),
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

fn parse_attributes(mut s: &str) -> Result<Vec<(String, String)>, String> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(attrs);
        }
        let name_len = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(s.len());
        if name_len == 0 {
            return Err("Invalid attribute".to_owned());
        }
        let name = s[..name_len].to_ascii_lowercase();
        s = s[name_len..].trim_start();
        let Some(after_eq) = s.strip_prefix('=') else {
            attrs.push((name, String::new()));
            continue;
        };
        s = after_eq.trim_start();
        let (raw, rest) = match s.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let Some(end) = s[1..].find(q) else {
                    return Err("Unclosed attribute value".to_owned());
                };
                (&s[1..1 + end], &s[end + 2..])
            }
            _ => {
                let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
                (&s[..end], &s[end..])
            }
        };
        attrs.push((name, decode_lenient(raw)));
        s = rest;
    }
}

/// Decodes the entities of an attribute value, leaving anything undecodable as it is.
fn decode_lenient(s: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('&')
            && let Some((ch, len)) = decode_entity(rest)
        {
            out.push(ch);
            i += len;
            continue;
        }
        let c = rest.chars().next().expect("char boundary");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Decodes `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric entities at the start of `rest`.
fn decode_entity(rest: &str) -> Option<(char, usize)> {
    let semicolon = rest.char_indices().take(12).find(|&(_, c)| c == ';')?.0;
    let body = &rest[1..semicolon];
    let ch = match body {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let number = body.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse::<u32>().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')?
        }
    };
    Some((ch, semicolon + 1))
}

fn sort_entities(entities: &mut [Value]) {
    entities.sort_by_key(|e| (e["offset"].as_u64().unwrap_or(0), std::cmp::Reverse(e["length"].as_u64().unwrap_or(0))));
}

/// MarkdownV2 (`v2 = true`) and legacy Markdown. Entities are tracked by their markers; in
/// MarkdownV2 every reserved character outside code must be escaped with a backslash.
fn parse_markdown(src: &str, v2: bool) -> Result<Parsed, String> {
    const RESERVED_V2: &str = "_*[]()~`>#+-=|{}.!";
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut text = String::new();
    let mut offset = 0usize;
    // (marker, entity type, start offset, byte position of the marker)
    let mut open: Vec<(&'static str, &'static str, usize, usize)> = Vec::new();
    let mut entities = Vec::new();
    let mut k = 0;
    let mut line_start = true;
    let push = |text: &mut String, offset: &mut usize, c: char| {
        text.push(c);
        *offset += c.len_utf16();
    };
    let toggle = |open: &mut Vec<(&'static str, &'static str, usize, usize)>,
                  entities: &mut Vec<Value>,
                  marker: &'static str,
                  kind: &'static str,
                  offset: usize,
                  byte: usize| {
        if let Some(pos) = open.iter().position(|(m, ..)| *m == marker) {
            let (_, kind, start, _) = open.remove(pos);
            if offset > start {
                entities.push(json!({"type": kind, "offset": start, "length": offset - start}));
            }
        } else {
            open.push((marker, kind, offset, byte));
        }
    };
    while k < chars.len() {
        let (byte, c) = chars[k];
        let next = chars.get(k + 1).map(|&(_, c)| c);
        let was_line_start = line_start;
        line_start = c == '\n';
        match c {
            '\\' => {
                let escapable = |n: char| {
                    if v2 { (1..=126).contains(&(n as u32)) } else { "_*`[".contains(n) }
                };
                match next {
                    Some(n) if escapable(n) => {
                        push(&mut text, &mut offset, n);
                        k += 2;
                    }
                    _ if v2 => {
                        return Err(entities_error(format!(
                            "Character '\\' at byte offset {byte} must be followed by an escapable character"
                        )));
                    }
                    _ => {
                        push(&mut text, &mut offset, c);
                        k += 1;
                    }
                }
                continue;
            }
            '`' => {
                let pre = next == Some('`') && chars.get(k + 2).map(|&(_, c)| c) == Some('`');
                let fence = if pre { 3 } else { 1 };
                let start = offset;
                let mut j = k + fence;
                // A pre block may start with a language name on its own line.
                let mut language = None;
                if pre {
                    let line_end = chars[j..].iter().position(|&(_, c)| c == '\n' || c == '`');
                    if let Some(n) = line_end
                        && chars[j + n].1 == '\n'
                    {
                        let lang: String = chars[j..j + n].iter().map(|&(_, c)| c).collect();
                        if !lang.is_empty() {
                            language = Some(lang);
                        }
                        j += n + 1;
                    }
                }
                let mut closed = false;
                while j < chars.len() {
                    let cj = chars[j].1;
                    if cj == '\\' && v2 && j + 1 < chars.len() {
                        push(&mut text, &mut offset, chars[j + 1].1);
                        j += 2;
                        continue;
                    }
                    if cj == '`' {
                        let is_fence = (0..fence).all(|d| chars.get(j + d).map(|&(_, c)| c) == Some('`'));
                        if is_fence {
                            j += fence;
                            closed = true;
                            break;
                        }
                    }
                    push(&mut text, &mut offset, cj);
                    j += 1;
                }
                if !closed {
                    let kind = if pre { "Pre" } else { "Code" };
                    return Err(entities_error(format!("Can't find end of {kind} entity at byte offset {byte}")));
                }
                if offset > start {
                    let mut entity = json!({
                        "type": if pre { "pre" } else { "code" },
                        "offset": start,
                        "length": offset - start,
                    });
                    if let Some(language) = language {
                        entity["language"] = json!(language);
                    }
                    entities.push(entity);
                }
                k = j;
                continue;
            }
            '*' => toggle(&mut open, &mut entities, "*", "bold", offset, byte),
            '_' if v2 && next == Some('_') => {
                toggle(&mut open, &mut entities, "__", "underline", offset, byte);
                k += 2;
                continue;
            }
            '_' => toggle(&mut open, &mut entities, "_", "italic", offset, byte),
            '~' if v2 => toggle(&mut open, &mut entities, "~", "strikethrough", offset, byte),
            '|' if v2 && next == Some('|') => {
                toggle(&mut open, &mut entities, "||", "spoiler", offset, byte);
                k += 2;
                continue;
            }
            '[' => open.push(("[", "text_link", offset, byte)),
            ']' if open.last().is_some_and(|(m, ..)| *m == "[") => {
                let (_, _, start, start_byte) = open.pop().expect("checked");
                if next != Some('(') {
                    return Err(entities_error(format!("Can't find end of a URL for the text link at byte offset {start_byte}")));
                }
                let mut j = k + 2;
                let mut url = String::new();
                let mut closed = false;
                while j < chars.len() {
                    let cj = chars[j].1;
                    if cj == '\\' && v2 && j + 1 < chars.len() {
                        url.push(chars[j + 1].1);
                        j += 2;
                        continue;
                    }
                    if cj == ')' {
                        closed = true;
                        j += 1;
                        break;
                    }
                    url.push(cj);
                    j += 1;
                }
                if !closed {
                    return Err(entities_error(format!("Can't find end of a URL for the text link at byte offset {start_byte}")));
                }
                if offset > start && (url.starts_with("http://") || url.starts_with("https://") || url.starts_with("tg://")) {
                    entities.push(json!({"type": "text_link", "offset": start, "length": offset - start, "url": url}));
                }
                k = j;
                continue;
            }
            '>' if v2 && was_line_start => {
                // A blockquote line marker.
            }
            _ if v2 && RESERVED_V2.contains(c) => {
                return Err(entities_error(format!("Character '{c}' is reserved and must be escaped with the preceding '\\'")));
            }
            _ => push(&mut text, &mut offset, c),
        }
        k += 1;
    }
    if let Some((marker, kind, _, byte)) = open.first() {
        let what = if *marker == "[" { "text_link".to_owned() } else { kind.to_string() };
        return Err(entities_error(format!("Can't find end of {what} entity at byte offset {byte}")));
    }
    sort_entities(&mut entities);
    Ok(Parsed { text, entities })
}

//! Turns an uploaded file into rows, the unit that attribution later credits.
//!
//! [`Format::from_file_name`] picks the format from the file name's extension and [`parse`]
//! turns the file's bytes into row texts, in file order:
//!
//! | format | one row per |
//! |---|---|
//! | txt, pdf | paragraph (text between blank lines), trimmed |
//! | md | section: a heading with the text that follows it, up to the next heading |
//! | jsonl | non-empty line, the line's own text trimmed (it must be a JSON value) |
//! | csv | record after the header, as a compact JSON object `{"header": "field", ...}` |
//! | docx | non-empty paragraph of `word/document.xml`, trimmed |
//!
//! Prose rows (txt, md, pdf, docx) are at most 4000 characters: a longer paragraph is split at
//! sentence or line ends, a longer markdown section at blank lines between its paragraphs.
//! Records (jsonl, csv) are never split.
//!
//! Parsing never panics: every way a file can be wrong is a [`ParseError`] whose message says
//! what to fix, with the line number where there is one. The text formats must be UTF-8 (a
//! byte-order mark is dropped) and must not contain NUL bytes.
//!
//! ```
//! use commons_storage::parse::{parse, Format};
//! let format = Format::from_file_name("notes.TXT").unwrap();
//! let rows = parse(format, b"First paragraph.\r\n\r\nSecond\r\nparagraph.\r\n").unwrap();
//! assert_eq!(rows, ["First paragraph.", "Second\nparagraph."]);
//! ```

use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The longest prose row, in characters; longer paragraphs and sections are split.
const MAX_ROW_CHARS: usize = 4000;

/// The most bytes `word/document.xml` may inflate to, so a zip bomb cannot exhaust memory.
const MAX_DOCX_XML_BYTES: u64 = 256 << 20;

/// A file format Commons can turn into rows.
///
/// The variant order is part of the storage format (records store the variant index): add new
/// formats at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain UTF-8 text (`.txt`): one row per paragraph.
    Txt,
    /// Markdown (`.md`): one row per heading section.
    Md,
    /// JSON Lines (`.jsonl`): one row per line.
    Jsonl,
    /// Comma-separated values with a header row (`.csv`): one row per record.
    Csv,
    /// PDF (`.pdf`): the extracted text, one row per paragraph.
    Pdf,
    /// Word document (`.docx`): one row per paragraph.
    Docx,
}

impl Format {
    /// Every format, in variant order.
    const ALL: [Format; 6] = [
        Format::Txt,
        Format::Md,
        Format::Jsonl,
        Format::Csv,
        Format::Pdf,
        Format::Docx,
    ];

    /// The format named by the file name's extension (case-insensitive); an unknown or missing
    /// extension is [`ParseError::Unsupported`].
    pub fn from_file_name(name: &str) -> Result<Format, ParseError> {
        let unsupported = || ParseError::Unsupported {
            name: name.to_owned(),
        };
        let (_, ext) = name.rsplit_once('.').ok_or_else(unsupported)?;
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(ext))
            .ok_or_else(unsupported)
    }

    /// The format's name, which is also its file extension: `"txt"`, `"md"`, `"jsonl"`,
    /// `"csv"`, `"pdf"` or `"docx"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Md => "md",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
        }
    }

    /// The MIME type to serve a file of this format with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Txt => "text/plain; charset=utf-8",
            Format::Md => "text/markdown; charset=utf-8",
            Format::Jsonl => "application/jsonl",
            Format::Csv => "text/csv",
            Format::Pdf => "application/pdf",
            Format::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
        }
    }

    /// The format whose [`as_str`](Format::as_str) is `s` (exactly, lowercase).
    pub fn parse_str(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Why a file could not be turned into rows.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The file name's extension is not one of the supported formats.
    #[error("'{name}' is not a supported file type: use .txt, .md, .jsonl, .csv, .pdf or .docx")]
    Unsupported {
        /// The file name as given.
        name: String,
    },
    /// The file has no bytes, or only whitespace.
    #[error("the file is empty")]
    Empty,
    /// A text format (txt, md, jsonl, csv) that is not valid UTF-8.
    #[error(
        "the file is not UTF-8 text: line {line} has a byte that is not valid UTF-8 (save it as UTF-8)"
    )]
    InvalidUtf8 {
        /// The line (1-based) of the first invalid byte.
        line: usize,
    },
    /// The bytes are not what the extension says: a pdf without the `%PDF-` header, a docx
    /// that is no zip archive or has no `word/document.xml`, NUL bytes in a text format.
    #[error("the file is not what its .{format} extension says: {detail}")]
    TypeMismatch {
        /// The format the extension claimed, as [`Format::as_str`].
        format: &'static str,
        /// What was found instead.
        detail: String,
    },
    /// A jsonl line or csv record that cannot be read.
    #[error("line {line} of the file {message}")]
    MalformedRecord {
        /// The line (1-based) where the bad line or record starts.
        line: usize,
        /// Why, worded to follow "line N of the file", e.g. "is not valid JSON: expected value
        /// at column 1".
        message: String,
    },
    /// The file parsed but holds no rows: only blank lines, or a csv header without records.
    #[error("the file has no rows: it holds only blank lines, or a header without records")]
    NoRows,
    /// The pdf or docx text extractor failed on this file.
    #[error("could not extract the text: {message}")]
    Extract {
        /// What the extractor reported.
        message: String,
    },
}

/// Parse file bytes into row texts, in file order.
///
/// Never panics, whatever the bytes; never returns an empty list (that is
/// [`ParseError::NoRows`]).
pub fn parse(format: Format, bytes: &[u8]) -> Result<Vec<String>, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let rows = match format {
        Format::Txt => paragraphs(&text(format, bytes)?),
        Format::Md => markdown(&text(format, bytes)?),
        Format::Jsonl => jsonl(&text(format, bytes)?)?,
        Format::Csv => csv_rows(&text(format, bytes)?)?,
        Format::Pdf => paragraphs(&pdf_text(bytes)?),
        Format::Docx => docx(bytes)?,
    };
    if rows.is_empty() {
        return Err(ParseError::NoRows);
    }
    Ok(rows)
}

/// The bytes of a text format as a string with `\n` line ends and no byte-order mark.
fn text(format: Format, bytes: &[u8]) -> Result<String, ParseError> {
    // A NUL byte is the usual sign of a binary file; check it before UTF-8 so a renamed
    // binary gets the clearer message.
    if bytes.contains(&0) {
        return Err(ParseError::TypeMismatch {
            format: format.as_str(),
            detail: "it contains NUL bytes, so it is a binary file, not text".to_owned(),
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let s = std::str::from_utf8(bytes).map_err(|e| ParseError::InvalidUtf8 {
        line: line_of(&bytes[..e.valid_up_to()]),
    })?;
    if s.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(normalize_newlines(s))
}

/// The 1-based line on which the byte just after `before` lies.
fn line_of(before: &[u8]) -> usize {
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// `\r\n` and lone `\r` become `\n`.
fn normalize_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_owned();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// A line that only separates paragraphs.
fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// txt and pdf: one row per paragraph, long paragraphs split.
fn paragraphs(text: &str) -> Vec<String> {
    let text = normalize_newlines(text);
    let mut rows = Vec::new();
    let mut paragraph = String::new();
    for line in text.split('\n') {
        if is_blank(line) {
            push_bounded(&paragraph, &mut rows);
            paragraph.clear();
            continue;
        }
        if !paragraph.is_empty() {
            paragraph.push('\n');
        }
        paragraph.push_str(line);
    }
    push_bounded(&paragraph, &mut rows);
    rows
}

/// Push `text` trimmed as one row, or as several when it is longer than [`MAX_ROW_CHARS`].
fn push_bounded(text: &str, rows: &mut Vec<String>) {
    let mut packer = Packer::new(rows);
    packer.add(text);
    packer.flush();
}

/// Packs pieces of text into rows of at most [`MAX_ROW_CHARS`] characters, in order.
///
/// Pieces are appended to the current row while it stays within the limit; a piece that is
/// longer than the limit on its own is broken at sentence or line ends, then at whitespace,
/// then anywhere.
struct Packer<'r> {
    rows: &'r mut Vec<String>,
    current: String,
    chars: usize,
}

impl<'r> Packer<'r> {
    fn new(rows: &'r mut Vec<String>) -> Self {
        Packer {
            rows,
            current: String::new(),
            chars: 0,
        }
    }

    fn add(&mut self, piece: &str) {
        let n = piece.chars().count();
        if n > MAX_ROW_CHARS {
            self.add_broken(piece);
            return;
        }
        if self.chars + n > MAX_ROW_CHARS {
            self.flush();
        }
        self.current.push_str(piece);
        self.chars += n;
    }

    fn add_broken(&mut self, piece: &str) {
        let sentences = sentences(piece);
        if sentences.len() > 1 {
            sentences.into_iter().for_each(|s| self.add(s));
            return;
        }
        let words: Vec<&str> = piece.split_inclusive(char::is_whitespace).collect();
        if words.len() > 1 {
            words.into_iter().for_each(|w| self.add(w));
            return;
        }
        // One word longer than a row: cut it at character boundaries.
        let mut rest = piece;
        while !rest.is_empty() {
            let cut = rest
                .char_indices()
                .nth(MAX_ROW_CHARS)
                .map_or(rest.len(), |(i, _)| i);
            let (head, tail) = rest.split_at(cut);
            self.add(head);
            rest = tail;
        }
    }

    fn flush(&mut self) {
        let row = self.current.trim();
        if !row.is_empty() {
            self.rows.push(row.to_owned());
        }
        self.current.clear();
        self.chars = 0;
    }
}

/// Splits `text` after each line end and after the whitespace that follows a `.`, `!` or `?`.
/// The pieces put back together are `text`.
fn sentences(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev = None;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let boundary = c == '\n' || (c.is_whitespace() && matches!(prev, Some('.' | '!' | '?')));
        if boundary && end < text.len() {
            pieces.push(&text[start..end]);
            start = end;
        }
        prev = Some(c);
    }
    pieces.push(&text[start..]);
    pieces
}

/// md: one row per section, each starting at an ATX heading outside fenced code.
fn markdown(text: &str) -> Vec<String> {
    let lines = md_lines(text);
    let mut rows = Vec::new();
    let mut first = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.heading && i > first {
            md_section(text, &lines[first..i], line.start, &mut rows);
            first = i;
        }
    }
    md_section(text, &lines[first..], text.len(), &mut rows);
    rows
}

/// One line of a markdown file, classified.
struct MdLine {
    /// Byte offset of the line's first character.
    start: usize,
    /// An ATX heading outside fenced code.
    heading: bool,
    /// A blank line outside fenced code: a paragraph break.
    blank: bool,
}

fn md_lines(text: &str) -> Vec<MdLine> {
    let mut lines = Vec::new();
    // The open fence's character and length, while inside fenced code.
    let mut fence: Option<(char, usize)> = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let marker = fence_marker(body);
        let (heading, blank) = match (fence, marker) {
            (Some((c, n)), Some((mc, mn, rest)))
                if mc == c && mn >= n && rest.trim().is_empty() =>
            {
                fence = None;
                (false, false)
            }
            (Some(_), _) => (false, false),
            (None, Some((mc, mn, _))) => {
                fence = Some((mc, mn));
                (false, false)
            }
            (None, None) => (is_atx_heading(body), is_blank(body)),
        };
        lines.push(MdLine {
            start,
            heading,
            blank,
        });
        start += line.len();
    }
    lines
}

/// Up to three spaces of indent, then a run of at least three backticks or tildes: the fence
/// character, the run's length and the rest of the line.
fn fence_marker(line: &str) -> Option<(char, usize, &str)> {
    let body = strip_indent(line)?;
    let c = body.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let n = body.chars().take_while(|&x| x == c).count();
    let rest = &body[n..];
    // "``` a ``` b" is inline code, not a fence: a backtick fence's info string has no backtick.
    (n >= 3 && !(c == '`' && rest.contains('`'))).then_some((c, n, rest))
}

/// `#` to `######` after at most three spaces, followed by whitespace or the line end.
fn is_atx_heading(line: &str) -> bool {
    let Some(body) = strip_indent(line) else {
        return false;
    };
    let hashes = body.chars().take_while(|&c| c == '#').count();
    (1..=6).contains(&hashes)
        && body[hashes..]
            .chars()
            .next()
            .is_none_or(|c| c == ' ' || c == '\t')
}

/// The line without up to three leading spaces; `None` when it is indented further (code).
fn strip_indent(line: &str) -> Option<&str> {
    let body = line.trim_start_matches(' ');
    (line.len() - body.len() <= 3).then_some(body)
}

/// Push the markdown section made of `lines`, which ends at byte `end` of `text`: whole when
/// it fits in a row, else packed from its paragraphs.
fn md_section(text: &str, lines: &[MdLine], end: usize, rows: &mut Vec<String>) {
    let start = lines.first().map_or(end, |l| l.start);
    let section = &text[start..end];
    if section.trim().chars().count() <= MAX_ROW_CHARS {
        let row = section.trim();
        if !row.is_empty() {
            rows.push(row.to_owned());
        }
        return;
    }
    // Cut before each line that starts a paragraph, i.e. follows a blank line; the pieces
    // keep the text between the cuts exactly.
    let mut cuts = vec![start];
    for pair in lines.windows(2) {
        if let [before, line] = pair
            && before.blank
            && !line.blank
        {
            cuts.push(line.start);
        }
    }
    cuts.push(end);
    let mut packer = Packer::new(rows);
    for pair in cuts.windows(2) {
        if let [a, b] = pair {
            packer.add(&text[*a..*b]);
        }
    }
    packer.flush();
}

/// jsonl: one row per non-empty line, which must be a JSON value.
fn jsonl(text: &str) -> Result<Vec<String>, ParseError> {
    let mut rows = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // Validate only: the row keeps the line's own text, so key order and number
        // formatting stay exactly as the contributor wrote them.
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
            return Err(ParseError::MalformedRecord {
                line: i + 1,
                message: format!("is not valid JSON: {}", json_error(&e)),
            });
        }
        rows.push(line.to_owned());
    }
    Ok(rows)
}

/// serde_json's message for an error in a one-line document, without the "line 1".
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&position) {
        Some(what) => format!("{what} at column {}", e.column()),
        None => full,
    }
}

/// csv: a header, then one row per record as a JSON object in header order.
fn csv_rows(text: &str) -> Result<Vec<String>, ParseError> {
    check_quotes(text)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(csv_error)?.clone();
    let mut keys = Vec::with_capacity(headers.len());
    for (i, name) in headers.iter().enumerate() {
        if headers.iter().take(i).any(|earlier| earlier == name) {
            return Err(ParseError::MalformedRecord {
                line: headers.position().map_or(1, |p| to_usize(p.line())),
                message: format!("(the header) names the column {name:?} twice"),
            });
        }
        keys.push(json_string(name));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let mut row = String::from("{");
        for (i, (key, field)) in keys.iter().zip(record.iter()).enumerate() {
            if i > 0 {
                row.push(',');
            }
            row.push_str(key);
            row.push(':');
            row.push_str(&json_string(field));
        }
        row.push('}');
        rows.push(row);
    }
    Ok(rows)
}

/// A string as a JSON string literal.
fn json_string(s: &str) -> String {
    // Serialising a &str cannot fail; the fallback is never taken.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn csv_error(e: csv::Error) -> ParseError {
    let line = e.position().map_or(0, |p| to_usize(p.line()));
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, but the header has {expected_len}"),
        _ => format!("cannot be read as csv: {e}"),
    };
    ParseError::MalformedRecord { line, message }
}

/// The csv crate reads any quoting without complaint (`"a"b` is `ab`, an unclosed quote runs
/// to the end of the file), so check RFC 4180 quoting first: a quoted field ends at its
/// closing quote, which a delimiter or line end must follow, and every quote is closed.
fn check_quotes(text: &str) -> Result<(), ParseError> {
    let mut line = 1;
    let mut field_start = true;
    // The line on which the open quoted field started.
    let mut open_since: Option<usize> = None;
    let mut after_close = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if open_since.is_some() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    open_since = None;
                    after_close = true;
                }
            }
            continue;
        }
        if after_close {
            if !matches!(c, ',' | '\n') {
                return Err(ParseError::MalformedRecord {
                    line,
                    message: "has text after the closing quote of a field (write a quote \
                              inside a quoted field as \"\")"
                        .to_owned(),
                });
            }
            after_close = false;
        }
        match c {
            '"' if field_start => {
                open_since = Some(line);
                field_start = false;
            }
            ',' | '\n' => field_start = true,
            // A quote inside an unquoted field is a plain character, as the csv crate reads it.
            _ => field_start = false,
        }
    }
    match open_since {
        Some(line) => Err(ParseError::MalformedRecord {
            line,
            message: "opens a quoted field that is never closed".to_owned(),
        }),
        None => Ok(()),
    }
}

/// The text of a pdf, as pdf-extract lays it out.
fn pdf_text(bytes: &[u8]) -> Result<String, ParseError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(ParseError::TypeMismatch {
            format: Format::Pdf.as_str(),
            detail: "it does not start with %PDF-".to_owned(),
        });
    }
    // pdf-extract panics on some malformed files; one bad upload must not take the node down.
    let extracted = catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    }));
    match extracted {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(ParseError::Extract {
            message: format!("the pdf is damaged or unsupported: {e}"),
        }),
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(ParseError::Extract {
                message: format!("the pdf text extractor crashed on this file ({why})"),
            })
        }
    }
}

/// WordprocessingML's namespace, in its transitional and strict spellings.
const W_NAMESPACES: [&str; 2] = [
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
];

/// The markup-compatibility namespace, whose `Fallback` repeats content for old readers.
const MC_NAMESPACE: &str = "http://schemas.openxmlformats.org/markup-compatibility/2006";

/// docx: one row per non-empty paragraph of `word/document.xml`.
fn docx(bytes: &[u8]) -> Result<Vec<String>, ParseError> {
    let xml = docx_document_xml(bytes)?;
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(&xml);
    docx_paragraphs(xml).map_err(|e| ParseError::Extract {
        message: format!("word/document.xml is not well-formed: {e}"),
    })
}

fn docx_document_xml(bytes: &[u8]) -> Result<String, ParseError> {
    let mismatch = |detail: String| ParseError::TypeMismatch {
        format: Format::Docx.as_str(),
        detail,
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| mismatch(format!("it is not a zip archive ({e})")))?;
    let file = match archive.by_name("word/document.xml") {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(mismatch(
                "it is a zip archive without word/document.xml, not a Word document".to_owned(),
            ));
        }
        Err(e) => {
            return Err(ParseError::Extract {
                message: format!("cannot open word/document.xml: {e}"),
            });
        }
    };
    let mut xml = Vec::new();
    file.take(MAX_DOCX_XML_BYTES + 1)
        .read_to_end(&mut xml)
        .map_err(|e| ParseError::Extract {
            message: format!("cannot decompress word/document.xml: {e}"),
        })?;
    if xml.len() as u64 > MAX_DOCX_XML_BYTES {
        return Err(ParseError::Extract {
            message: format!(
                "word/document.xml is larger than {} MiB uncompressed",
                MAX_DOCX_XML_BYTES >> 20
            ),
        });
    }
    String::from_utf8(xml).map_err(|_| ParseError::Extract {
        message: "word/document.xml is not UTF-8".to_owned(),
    })
}

/// Walks the document: text of `w:t` elements, `w:tab` as a tab and `w:br`/`w:cr` as a line
/// break inside runs, and `w:p` ending a paragraph. Paragraphs nested in a paragraph (text
/// boxes) become rows of their own.
fn docx_paragraphs(xml: &str) -> Result<Vec<String>, String> {
    let mut reader = NsReader::from_str(xml);
    let mut rows = Vec::new();
    // Open paragraphs, innermost last.
    let mut open: Vec<String> = Vec::new();
    let mut runs = 0usize;
    let mut in_text = 0usize;
    // Depth inside mc:Fallback, whose content repeats that of mc:Choice.
    let mut fallback = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let w = matches!(ns, ResolveResult::Bound(n) if W_NAMESPACES.contains(&n.into_inner()));
        let mc = matches!(ns, ResolveResult::Bound(n) if n.into_inner() == MC_NAMESPACE);
        match event {
            Event::Eof => break,
            Event::Start(e) if mc && e.local_name().into_inner() == "Fallback" => fallback += 1,
            Event::End(e) if mc && e.local_name().into_inner() == "Fallback" => {
                fallback = fallback.saturating_sub(1);
            }
            _ if fallback > 0 => {}
            Event::Start(e) if w => match e.local_name().into_inner() {
                "p" => open.push(String::new()),
                "r" => runs += 1,
                "t" => in_text += 1,
                _ => {}
            },
            Event::End(e) if w => match e.local_name().into_inner() {
                "p" => {
                    if let Some(paragraph) = open.pop() {
                        push_bounded(&paragraph, &mut rows);
                    }
                }
                "r" => runs = runs.saturating_sub(1),
                "t" => in_text = in_text.saturating_sub(1),
                _ => {}
            },
            Event::Empty(e) if w && runs > 0 => {
                let text = match e.local_name().into_inner() {
                    "tab" => "\t",
                    "br" | "cr" => "\n",
                    _ => "",
                };
                if let Some(paragraph) = open.last_mut() {
                    paragraph.push_str(text);
                }
            }
            Event::Text(t) if in_text > 0 => {
                if let Some(paragraph) = open.last_mut() {
                    paragraph.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) if in_text > 0 => {
                if let Some(paragraph) = open.last_mut() {
                    paragraph.push_str(&t.xml10_content());
                }
            }
            // The reader reports `&amp;`, `&#233;` and the like apart from the text around them.
            Event::GeneralRef(r) if in_text > 0 => {
                let text = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_xml_entity(&r)
                        .ok_or_else(|| format!("unknown entity &{};", &*r))?
                        .to_owned(),
                };
                if let Some(paragraph) = open.last_mut() {
                    paragraph.push_str(&text);
                }
            }
            _ => {}
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of a file that must parse.
    fn rows(format: Format, bytes: &[u8]) -> Vec<String> {
        match parse(format, bytes) {
            Ok(rows) => rows,
            Err(e) => panic!("{format:?} should parse, got: {e}"),
        }
    }

    /// The error of a file that must not parse.
    fn error(format: Format, bytes: &[u8]) -> ParseError {
        match parse(format, bytes) {
            Ok(rows) => panic!("{format:?} should fail, got rows {rows:?}"),
            Err(e) => e,
        }
    }

    /// A docx holding `body` as the body of word/document.xml.
    fn docx_with(body: &str) -> Vec<u8> {
        use std::io::Write;
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>{body}</w:body></w:document>"#
        );
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("word/document.xml", options).expect("start");
        zip.write_all(xml.as_bytes()).expect("write");
        zip.finish().expect("finish").into_inner()
    }

    #[test]
    fn format_from_file_name() {
        let cases = [
            ("notes.txt", Format::Txt),
            ("README.MD", Format::Md),
            ("data.v2.JsonL", Format::Jsonl),
            ("table.csv", Format::Csv),
            ("paper.Pdf", Format::Pdf),
            ("letter.docx", Format::Docx),
        ];
        for (name, format) in cases {
            assert_eq!(Format::from_file_name(name).ok(), Some(format), "{name}");
        }
        for name in [
            "program.exe",
            "no_extension",
            "archive.tar.gz",
            "notes.txt.",
            "",
        ] {
            match Format::from_file_name(name) {
                Err(ParseError::Unsupported { name: got }) => assert_eq!(got, name),
                other => panic!("{name:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::parse_str(format.as_str()), Some(format));
            let json = serde_json::to_string(&format).expect("serialize");
            assert_eq!(json, format!("\"{}\"", format.as_str()));
        }
        assert_eq!(Format::parse_str("TXT"), None);
        assert_eq!(Format::parse_str("markdown"), None);
        assert_eq!(Format::Txt.content_type(), "text/plain; charset=utf-8");
        assert_eq!(Format::Md.content_type(), "text/markdown; charset=utf-8");
        assert_eq!(Format::Jsonl.content_type(), "application/jsonl");
        assert_eq!(Format::Csv.content_type(), "text/csv");
        assert_eq!(Format::Pdf.content_type(), "application/pdf");
        assert_eq!(
            Format::Docx.content_type(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
    }

    #[test]
    fn txt_sample() {
        assert_eq!(
            rows(Format::Txt, include_bytes!("../tests/fixtures/sample.txt")),
            [
                "Commons keeps datanets of rows.",
                "Each contributor uploads a file, and the file is split into rows.\n\
                 A paragraph may span several lines.",
                "Rows are the unit that attribution credits.",
            ]
        );
    }

    #[test]
    fn txt_crlf_bom_and_lone_cr() {
        let bytes = b"\xEF\xBB\xBFfirst\r\nstill first\r\n\r\n\r\nsecond\rthird line\r";
        assert_eq!(
            rows(Format::Txt, bytes),
            ["first\nstill first", "second\nthird line"]
        );
    }

    #[test]
    fn txt_long_paragraph_splits_at_sentences() {
        // Three sentences of 1500 characters: the first two fit one row, the third does not.
        let sentence = |c: char| format!("{}.", c.to_string().repeat(1499));
        let text = format!("{} {} {}", sentence('a'), sentence('b'), sentence('c'));
        let got = rows(Format::Txt, text.as_bytes());
        assert_eq!(
            got,
            [
                format!("{} {}", sentence('a'), sentence('b')),
                sentence('c')
            ]
        );
    }

    #[test]
    fn txt_long_paragraph_splits_at_lines_then_words_then_anywhere() {
        let line = "word ".repeat(500); // 2500 characters, no sentence end
        let text = format!("{line}\n{line}");
        let got = rows(Format::Txt, text.as_bytes());
        assert_eq!(got, [line.trim(), line.trim()]);

        let words = "word ".repeat(1000); // 5000 characters on one line
        let got = rows(Format::Txt, words.as_bytes());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], "word ".repeat(800).trim());
        assert_eq!(got[1], "word ".repeat(200).trim());

        let giant = "é".repeat(9000); // one word: cut at character boundaries
        let got = rows(Format::Txt, giant.as_bytes());
        let lens: Vec<usize> = got.iter().map(|r| r.chars().count()).collect();
        assert_eq!(lens, [4000, 4000, 1000]);
        assert_eq!(got.concat(), giant);
    }

    #[test]
    fn md_sample() {
        assert_eq!(
            rows(Format::Md, include_bytes!("../tests/fixtures/sample.md")),
            [
                "Text before the first heading.",
                "# Commons\n\nCommons is a self-hosted appliance.",
                "## Rows\nA row is the unit of attribution.\n\n```sh\n\
                 # this is a comment in a fence, not a heading\ncommons serve\n```\n\n\
                 #hashtag is not a heading either",
                "### Notes\n- one\n- two",
            ]
        );
    }

    #[test]
    fn md_heading_rules() {
        let text = "#\n\n####### seven hashes\n    # indented code\n```inline``` code\n\
                    # heading after inline code\n   ### three spaces\n\
                    ~~~~\n# in tilde fence\n```\n# still fenced: a shorter or other fence\n~~~~~\n\
                    ###### six\tafter tab";
        assert_eq!(
            rows(Format::Md, text.as_bytes()),
            [
                "#\n\n####### seven hashes\n    # indented code\n```inline``` code",
                "# heading after inline code",
                "### three spaces\n~~~~\n# in tilde fence\n```\n\
                 # still fenced: a shorter or other fence\n~~~~~",
                "###### six\tafter tab",
            ]
        );
    }

    #[test]
    fn md_long_section_splits_between_paragraphs() {
        let paragraph = |c: char| c.to_string().repeat(1500);
        let fence = format!("```\n{}\n\n{}\n```", paragraph('x'), paragraph('y'));
        let text = format!(
            "# Big\n\n{}\n\n\n{}\n\n{fence}\n\n{}\n# Next\nshort",
            paragraph('a'),
            paragraph('b'),
            paragraph('c')
        );
        assert_eq!(
            rows(Format::Md, text.as_bytes()),
            [
                format!("# Big\n\n{}\n\n\n{}", paragraph('a'), paragraph('b')),
                // The blank line inside the fence is no paragraph break.
                fence.clone(),
                paragraph('c'),
                "# Next\nshort".to_owned(),
            ]
        );
    }

    #[test]
    fn jsonl_sample_keeps_line_text() {
        assert_eq!(
            rows(
                Format::Jsonl,
                include_bytes!("../tests/fixtures/sample.jsonl")
            ),
            [
                r#"{"question": "What is a datanet?", "answer": "A curated set of rows."}"#,
                r#"{"b": 2, "a": 1}"#,
                r#""a bare string is a JSON value too""#,
                "[1, 2, 3]",
            ]
        );
    }

    #[test]
    fn jsonl_bad_line_is_named() {
        let e = error(Format::Jsonl, include_bytes!("../tests/fixtures/bad.jsonl"));
        assert!(
            matches!(&e, ParseError::MalformedRecord { line: 3, message }
                if message == "is not valid JSON: key must be a string at column 9"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "line 3 of the file is not valid JSON: key must be a string at column 9"
        );

        let e = error(Format::Jsonl, b"{\"a\":1}\r\n\r\noops\r\n");
        assert_eq!(
            e.to_string(),
            "line 3 of the file is not valid JSON: expected value at column 1"
        );
        let e = error(Format::Jsonl, b"{\"a\":1} {\"b\":2}\n");
        assert_eq!(
            e.to_string(),
            "line 1 of the file is not valid JSON: trailing characters at column 9"
        );
    }

    #[test]
    fn csv_sample_rows_are_json_objects_in_header_order() {
        assert_eq!(
            rows(Format::Csv, include_bytes!("../tests/fixtures/sample.csv")),
            [
                r#"{"question":"What is a row?","answer":"The unit attribution credits","score":"5"}"#,
                r#"{"question":"Quoted, with a comma","answer":"She said \"hi\"","score":"4"}"#,
                r#"{"question":"Multi-line","answer":"first line\nsecond line","score":"3"}"#,
                r#"{"question":"Empty answer","answer":"","score":""}"#,
            ]
        );
        // Header order, not alphabetical order.
        assert_eq!(
            rows(Format::Csv, b"z,a\r\n1,2\r\n"),
            [r#"{"z":"1","a":"2"}"#]
        );
    }

    #[test]
    fn csv_wrong_field_count_is_named() {
        let e = error(Format::Csv, include_bytes!("../tests/fixtures/bad.csv"));
        assert!(
            matches!(&e, ParseError::MalformedRecord { line: 4, message }
                if message == "has 2 fields, but the header has 3"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "line 4 of the file has 2 fields, but the header has 3"
        );
    }

    #[test]
    fn csv_bad_quoting_is_named() {
        let e = error(Format::Csv, b"a,b\n1,2\n3,\"open\n4,5\n");
        assert!(
            matches!(&e, ParseError::MalformedRecord { line: 3, message }
                if message == "opens a quoted field that is never closed"),
            "{e:?}"
        );
        let e = error(Format::Csv, b"a,b\n\"x\ny\",2\n\"3\"x,4\n");
        assert!(
            matches!(&e, ParseError::MalformedRecord { line: 4, message }
                if message.starts_with("has text after the closing quote")),
            "{e:?}"
        );
        // A quote inside an unquoted field is an ordinary character.
        assert_eq!(
            rows(Format::Csv, b"size\n5\" screen\n"),
            [r#"{"size":"5\" screen"}"#]
        );
    }

    #[test]
    fn csv_header_rules() {
        assert!(matches!(error(Format::Csv, b"a,b,c\n"), ParseError::NoRows));
        let e = error(Format::Csv, b"a,b,a\n1,2,3\n");
        assert_eq!(
            e.to_string(),
            "line 1 of the file (the header) names the column \"a\" twice"
        );
    }

    #[test]
    fn pdf_sample() {
        assert_eq!(
            rows(Format::Pdf, include_bytes!("../tests/fixtures/sample.pdf")),
            [
                "Commons sample PDF",
                "Rows are the unit that attribution credits.",
                "A second paragraph, long enough that fpdf2 wraps it onto a second line of the \
                 page, which the\nextracted text keeps as a line break inside the row.",
            ]
        );
    }

    #[test]
    fn pdf_errors() {
        let e = error(
            Format::Pdf,
            include_bytes!("../tests/fixtures/not_a_pdf.pdf"),
        );
        assert!(
            matches!(&e, ParseError::TypeMismatch { format: "pdf", .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "the file is not what its .pdf extension says: it does not start with %PDF-"
        );

        let sample = include_bytes!("../tests/fixtures/sample.pdf");
        let e = error(Format::Pdf, &sample[..sample.len() / 2]);
        assert!(matches!(e, ParseError::Extract { .. }), "{e:?}");

        // pdf-extract panics on this one; the panic must come back as an error.
        let e = error(
            Format::Pdf,
            include_bytes!("../tests/fixtures/no_mediabox.pdf"),
        );
        assert_eq!(
            e.to_string(),
            "could not extract the text: the pdf text extractor crashed on this file (MediaBox)"
        );
    }

    #[test]
    fn docx_sample() {
        assert_eq!(
            rows(
                Format::Docx,
                include_bytes!("../tests/fixtures/sample.docx")
            ),
            [
                "Commons sample",
                "Rows are credited to contributors.",
                "Fish & chips <3",
                "name\tvalue\nnext line",
                "cell one",
                "cell two",
                "Last paragraph.",
            ]
        );
    }

    #[test]
    fn docx_walk() {
        let body = r#"<w:p><w:r><w:t xml:space="preserve">  caf&#233; &#x2014; </w:t></w:r><w:r><w:t><![CDATA[<raw>]]></w:t><w:cr/><w:t>x</w:t></w:r></w:p><w:p><w:r><w:t>outer </w:t><w:drawing><w:txbxContent><w:p><w:r><w:t>in a text box</w:t></w:r></w:p></w:txbxContent></w:drawing><w:t>after</w:t></w:r></w:p><w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:t>chosen</w:t></mc:Choice><mc:Fallback><w:p><w:r><w:t>fallback copy</w:t></w:r></w:p></mc:Fallback></mc:AlternateContent></w:r></w:p><w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t>no tab stop</w:t></w:r></w:p><w:p/><w:p><w:r><w:t>   </w:t></w:r></w:p>"#;
        assert_eq!(
            rows(Format::Docx, &docx_with(body)),
            [
                "café — <raw>\nx",
                "in a text box",
                "outer after",
                "chosen",
                "no tab stop"
            ]
        );
    }

    #[test]
    fn docx_errors() {
        let e = error(
            Format::Docx,
            include_bytes!("../tests/fixtures/not_a_docx.docx"),
        );
        assert!(
            matches!(&e, ParseError::TypeMismatch { format: "docx", detail }
                if detail.starts_with("it is not a zip archive")),
            "{e:?}"
        );
        let e = error(
            Format::Docx,
            include_bytes!("../tests/fixtures/zip_without_document.docx"),
        );
        assert_eq!(
            e.to_string(),
            "the file is not what its .docx extension says: it is a zip archive without \
             word/document.xml, not a Word document"
        );
        let e = error(
            Format::Docx,
            &docx_with("<w:p><w:r><w:t>unclosed</w:r></w:p>"),
        );
        assert!(
            matches!(&e, ParseError::Extract { message }
                if message.starts_with("word/document.xml is not well-formed")),
            "{e:?}"
        );
        let e = error(
            Format::Docx,
            &docx_with("<w:p><w:r><w:t>&nbsp;</w:t></w:r></w:p>"),
        );
        assert!(
            matches!(&e, ParseError::Extract { message } if message.contains("&nbsp;")),
            "{e:?}"
        );
        assert!(matches!(
            error(
                Format::Docx,
                &docx_with("<w:p/><w:p><w:r><w:t> </w:t></w:r></w:p>")
            ),
            ParseError::NoRows
        ));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let latin1 = include_bytes!("../tests/fixtures/latin1.txt");
        for format in [Format::Txt, Format::Md, Format::Jsonl, Format::Csv] {
            let e = error(format, latin1);
            assert!(
                matches!(e, ParseError::InvalidUtf8 { line: 3 }),
                "{format:?}: {e:?}"
            );
        }
        assert_eq!(
            error(Format::Txt, latin1).to_string(),
            "the file is not UTF-8 text: line 3 has a byte that is not valid UTF-8 (save it as UTF-8)"
        );
    }

    #[test]
    fn nul_bytes_in_text_are_a_type_mismatch() {
        for format in [Format::Txt, Format::Md, Format::Jsonl, Format::Csv] {
            let e = error(format, b"looks like text\0\x01\x02");
            assert!(
                matches!(&e, ParseError::TypeMismatch { format: f, .. } if *f == format.as_str()),
                "{format:?}: {e:?}"
            );
        }
        assert_eq!(
            error(Format::Txt, b"\0").to_string(),
            "the file is not what its .txt extension says: it contains NUL bytes, so it is a \
             binary file, not text"
        );
    }

    #[test]
    fn empty_files() {
        for format in Format::ALL {
            for bytes in [&b""[..], b" \r\n\t\n", b"\xEF\xBB\xBF", b"\xEF\xBB\xBF \n"] {
                let e = error(format, bytes);
                // A BOM is text: for pdf and docx it is simply the wrong kind of file.
                let ok = matches!(e, ParseError::Empty)
                    || (bytes.starts_with(b"\xEF")
                        && matches!(format, Format::Pdf | Format::Docx)
                        && matches!(e, ParseError::TypeMismatch { .. }));
                assert!(ok, "{format:?} {bytes:?}: {e:?}");
            }
        }
        assert_eq!(error(Format::Txt, b"").to_string(), "the file is empty");
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                ParseError::Unsupported {
                    name: "x.exe".into(),
                },
                "'x.exe' is not a supported file type: use .txt, .md, .jsonl, .csv, .pdf or .docx",
            ),
            (
                ParseError::NoRows,
                "the file has no rows: it holds only blank lines, or a header without records",
            ),
            (
                ParseError::Extract {
                    message: "boom".into(),
                },
                "could not extract the text: boom",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn no_panic_on_damaged_files() {
        // Every prefix of the pdf and docx samples, and of the text samples under every
        // format: whatever the result, it must come back as a value.
        let samples: [&[u8]; 6] = [
            include_bytes!("../tests/fixtures/sample.txt"),
            include_bytes!("../tests/fixtures/sample.md"),
            include_bytes!("../tests/fixtures/sample.jsonl"),
            include_bytes!("../tests/fixtures/sample.csv"),
            include_bytes!("../tests/fixtures/sample.pdf"),
            include_bytes!("../tests/fixtures/sample.docx"),
        ];
        for sample in samples {
            let step = (sample.len() / 200).max(1);
            for cut in (0..=sample.len()).step_by(step) {
                for format in Format::ALL {
                    let _ = parse(format, &sample[..cut]);
                }
            }
        }
    }
}

//! Temporary stand-in for parse.rs while it is being written (lead's scratch; not committed).
#![allow(missing_docs, unreachable_pub)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format { Txt, Md, Jsonl, Csv, Pdf, Docx }
impl Format {
    pub fn from_file_name(name: &str) -> Result<Format, ParseError> {
        match name.rsplit('.').next().unwrap_or("") { "txt" => Ok(Format::Txt), "md" => Ok(Format::Md), "jsonl" => Ok(Format::Jsonl), "csv" => Ok(Format::Csv), _ => Err(ParseError::Unsupported { name: name.into() }) }
    }
    pub fn as_str(self) -> &'static str { match self { Format::Txt => "txt", Format::Md => "md", Format::Jsonl => "jsonl", Format::Csv => "csv", Format::Pdf => "pdf", Format::Docx => "docx" } }
    pub fn content_type(self) -> &'static str { "text/plain; charset=utf-8" }
    pub fn parse_str(s: &str) -> Option<Format> { Format::from_file_name(&format!("x.{s}")).ok() }
}
pub fn parse(_format: Format, bytes: &[u8]) -> Result<Vec<String>, ParseError> {
    let s = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8 { line: 1 })?;
    let rows: Vec<String> = s.split("\n\n").map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
    if rows.is_empty() { return Err(ParseError::NoRows) }
    Ok(rows)
}
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("unsupported {name}")] Unsupported { name: String },
    #[error("empty")] Empty,
    #[error("utf8 line {line}")] InvalidUtf8 { line: usize },
    #[error("mismatch {format} {detail}")] TypeMismatch { format: &'static str, detail: String },
    #[error("line {line}: {message}")] MalformedRecord { line: usize, message: String },
    #[error("no rows")] NoRows,
    #[error("extract {message}")] Extract { message: String },
}

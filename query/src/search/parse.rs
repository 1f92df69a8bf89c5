//! The search query language: tantivy's grammar (words, `"phrases"`, `AND`/`OR`/`NOT`, `+`/`-`,
//! parentheses, `term*` prefixes, `field:value` filters), compiled into tantivy queries by us so
//! that only the public fields can be named, a single-term prefix works, and every mistake has a
//! readable message.
//!
//! Words next to each other must all match (AND), as in SQLite FTS5 and web search engines;
//! `OR` is explicit.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, RegexQuery,
    TermQuery,
};
use tantivy::query_grammar::{self, Delimiter, UserInputAst, UserInputLeaf};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, Term};

use super::Fields;
use crate::error::{Error, Result};

/// The fields a query may name, for error messages.
pub(crate) const PUBLIC_FIELDS: &str = "text, datanet, contributor, tag, contribution, row";

/// What to highlight in snippets: exact terms and prefixes of the text field.
#[derive(Debug, Default)]
pub(crate) struct Highlights {
    pub(crate) terms: Vec<String>,
    pub(crate) prefixes: Vec<String>,
}

/// A compiled user query: its top-level clauses (flat, so filters can join them) and what to
/// highlight.
pub(crate) struct Compiled {
    pub(crate) clauses: Vec<(Occur, Box<dyn Query>)>,
    pub(crate) highlights: Highlights,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("clauses", &self.clauses.len())
            .field("highlights", &self.highlights)
            .finish()
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidSearch(msg.into())
}

/// Syntax checks with precise messages, before the grammar's own (which only says "no").
fn check_balance(text: &str) -> Result<()> {
    let mut quote_start: Option<usize> = None;
    let mut depth: Vec<usize> = Vec::new();
    let mut escaped = false;
    for (i, c) in text.chars().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => {
                quote_start = match quote_start {
                    Some(_) => None,
                    None => Some(i),
                }
            }
            '(' if quote_start.is_none() => depth.push(i),
            ')' if quote_start.is_none() && depth.pop().is_none() => {
                return Err(invalid(format!(
                    "unbalanced parenthesis: the ')' at character {} closes nothing",
                    i + 1
                )));
            }
            _ => {}
        }
    }
    if let Some(i) = quote_start {
        return Err(invalid(format!(
            "unbalanced quotes: the phrase that starts at character {} is not closed with '\"'",
            i + 1
        )));
    }
    if let Some(i) = depth.pop() {
        return Err(invalid(format!(
            "unbalanced parenthesis: the '(' at character {} is not closed",
            i + 1
        )));
    }
    Ok(())
}

/// Parse and compile `text`.
pub(crate) fn compile(index: &Index, fields: &Fields, text: &str) -> Result<Compiled> {
    if text.trim().is_empty() {
        return Err(invalid(
            "the query is empty: give words to search for, or * to match every row",
        ));
    }
    if text.len() > 4096 {
        return Err(invalid("the query is longer than 4096 bytes"));
    }
    check_balance(text)?;
    let ast = match query_grammar::parse_query(text) {
        Ok(ast) => ast,
        Err(_) => {
            let (_, errors) = query_grammar::parse_query_lenient(text);
            return Err(match errors.first() {
                Some(e) => invalid(format!(
                    "cannot parse the query at character {}: {}",
                    e.pos + 1,
                    e.message
                )),
                None => invalid("cannot parse the query"),
            });
        }
    };
    let mut c = Compiler {
        fields,
        text: index
            .tokenizer_for_field(fields.text)
            .map_err(|e| Error::Index(e.to_string()))?,
        highlights: Highlights::default(),
    };
    let clauses = c.top(&ast)?;
    if clauses.is_empty() {
        return Err(invalid(
            "the query has no words to search for (punctuation only?)",
        ));
    }
    Ok(Compiled {
        clauses,
        highlights: c.highlights,
    })
}

struct Compiler<'a> {
    fields: &'a Fields,
    text: TextAnalyzer,
    highlights: Highlights,
}

fn occur(o: Option<Occur>) -> Occur {
    // Words side by side must all match.
    o.unwrap_or(Occur::Must)
}

impl Compiler<'_> {
    /// The top level, kept flat when it is a conjunction so filters join the same intersection.
    fn top(&mut self, ast: &UserInputAst) -> Result<Vec<(Occur, Box<dyn Query>)>> {
        match ast {
            UserInputAst::Clause(children)
                if children
                    .iter()
                    .all(|(o, _)| !matches!(o, Some(Occur::Should))) =>
            {
                let mut out = Vec::new();
                for (o, child) in children {
                    if let Some(q) = self.query(child)? {
                        out.push((occur(*o), q));
                    }
                }
                Ok(out)
            }
            other => Ok(self
                .query(other)?
                .map(|q| vec![(Occur::Must, q)])
                .unwrap_or_default()),
        }
    }

    fn query(&mut self, ast: &UserInputAst) -> Result<Option<Box<dyn Query>>> {
        match ast {
            UserInputAst::Clause(children) => {
                let mut subs: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for (o, child) in children {
                    if let Some(q) = self.query(child)? {
                        subs.push((occur(*o), q));
                    }
                }
                if subs.is_empty() {
                    return Ok(None);
                }
                if subs.iter().all(|(o, _)| *o == Occur::MustNot) {
                    // "NOT x" alone means everything but x.
                    subs.push((Occur::Must, Box::new(AllQuery)));
                }
                if subs.len() == 1 && subs[0].0 != Occur::MustNot {
                    return Ok(subs.pop().map(|(_, q)| q));
                }
                Ok(Some(Box::new(BooleanQuery::new(subs))))
            }
            UserInputAst::Boost(inner, boost) => Ok(self
                .query(inner)?
                .map(|q| Box::new(BoostQuery::new(q, boost.0 as f32)) as Box<dyn Query>)),
            UserInputAst::Leaf(leaf) => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, leaf: &UserInputLeaf) -> Result<Option<Box<dyn Query>>> {
        match leaf {
            UserInputLeaf::All => Ok(Some(Box::new(AllQuery))),
            UserInputLeaf::Literal(lit) => {
                let field = lit.field_name.as_deref().unwrap_or("text");
                let f = self.fields;
                // The grammar keeps a bare word's trailing `*` in the word; it means a prefix.
                let (phrase, prefix) = match lit.delimiter {
                    Delimiter::None if lit.phrase.len() > 1 && lit.phrase.ends_with('*') => {
                        (lit.phrase.trim_end_matches('*'), true)
                    }
                    _ => (lit.phrase.as_str(), lit.prefix),
                };
                match field {
                    "text" => self.text_literal(phrase, lit.slop, prefix),
                    "datanet" => raw(f.datanet, phrase, prefix).map(Some),
                    "contributor" => raw(f.contributor, phrase, prefix).map(Some),
                    "tag" => raw(f.tag, phrase, prefix).map(Some),
                    "contribution" | "row" => {
                        let n: u64 = lit.phrase.trim().parse().map_err(|_| {
                            invalid(format!("{field}:{} — {field} takes a number", lit.phrase))
                        })?;
                        let fld = if field == "row" {
                            f.row
                        } else {
                            f.contribution
                        };
                        Ok(Some(Box::new(TermQuery::new(
                            Term::from_field_u64(fld, n),
                            IndexRecordOption::Basic,
                        ))))
                    }
                    other => Err(unknown_field(other)),
                }
            }
            UserInputLeaf::Range { field, .. }
            | UserInputLeaf::Set { field, .. }
            | UserInputLeaf::Regex { field, .. } => {
                if let Some(name) = field
                    && !is_public(name)
                {
                    return Err(unknown_field(name));
                }
                Err(invalid(
                    "ranges, sets and regular expressions are not supported; use words, \"phrases\", prefix* and field:value",
                ))
            }
            UserInputLeaf::Exists { field } => {
                if !is_public(field) {
                    return Err(unknown_field(field));
                }
                Err(invalid(
                    "field:* is not supported; use * alone to match every row",
                ))
            }
        }
    }

    fn text_literal(
        &mut self,
        phrase: &str,
        slop: u32,
        prefix: bool,
    ) -> Result<Option<Box<dyn Query>>> {
        let field = self.fields.text;
        let mut terms: Vec<(usize, String)> = Vec::new();
        let mut stream = self.text.token_stream(phrase);
        stream.process(&mut |t| terms.push((t.position, t.text.clone())));
        if terms.is_empty() {
            return Ok(None);
        }
        if prefix {
            let Some((_, last)) = terms.last().cloned() else {
                return Ok(None);
            };
            self.highlights
                .terms
                .extend(terms[..terms.len() - 1].iter().map(|(_, t)| t.clone()));
            self.highlights.prefixes.push(last.clone());
            if terms.len() == 1 {
                let q = RegexQuery::from_pattern(&format!("{}.*", regex_escape(&last)), field)
                    .map_err(|e| invalid(format!("bad prefix '{last}*': {e}")))?;
                return Ok(Some(Box::new(q)));
            }
            let t = terms
                .into_iter()
                .map(|(p, s)| (p, Term::from_field_text(field, &s)))
                .collect();
            return Ok(Some(Box::new(PhrasePrefixQuery::new_with_offset(t))));
        }
        self.highlights
            .terms
            .extend(terms.iter().map(|(_, t)| t.clone()));
        if terms.len() == 1 {
            let (_, t) = &terms[0];
            return Ok(Some(Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::WithFreqs,
            ))));
        }
        let t = terms
            .into_iter()
            .map(|(p, s)| (p, Term::from_field_text(field, &s)))
            .collect();
        Ok(Some(Box::new(PhraseQuery::new_with_offset_and_slop(
            t, slop,
        ))))
    }
}

fn is_public(name: &str) -> bool {
    matches!(
        name,
        "text" | "datanet" | "contributor" | "tag" | "contribution" | "row"
    )
}

fn unknown_field(name: &str) -> Error {
    invalid(format!(
        "unknown field '{name}': a query may name {PUBLIC_FIELDS} (quote a phrase that contains ':')"
    ))
}

/// An exact or prefix match on a lowercased keyword field.
fn raw(field: Field, value: &str, prefix: bool) -> Result<Box<dyn Query>> {
    let v = value.trim().to_lowercase();
    if prefix {
        let q = RegexQuery::from_pattern(&format!("{}.*", regex_escape(&v)), field)
            .map_err(|e| invalid(format!("bad prefix '{v}*': {e}")))?;
        return Ok(Box::new(q));
    }
    Ok(Box::new(TermQuery::new(
        Term::from_field_text(field, &v),
        IndexRecordOption::Basic,
    )))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A range filter on a fast u64 field: `lo <= value` and `value < hi`.
pub(crate) fn u64_range(field: Field, lo: Bound<u64>, hi: Bound<u64>) -> Box<dyn Query> {
    let t = |v| Term::from_field_u64(field, v);
    Box::new(tantivy::query::RangeQuery::new(lo.map(t), hi.map(t)))
}

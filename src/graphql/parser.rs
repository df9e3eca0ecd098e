//! Parsing operations, quickly: a hand-written recursive descent over the common shape of
//! executable documents, producing exactly the [`ExecutableDocument`] async-graphql's own
//! parser (pest) does, positions included, since error locations and validation read them.
//!
//! pest spends about 24 µs on a 150-byte query, most of a distinct operation's time on this
//! path; this takes a small fraction of that (BENCHMARKS.md, "A distinct operation each time").
//! Anything it does not handle, or that is not valid, it hands to pest, whose answer (and error
//! message) is the one returned: block strings, a document in error, and the corners where pest
//! reads a document differently from the specification (`trueish` read as `true` then `ish`,
//! `[01]` as two numbers, `queryFoo` as the operation `Foo`, whitespace inside a type, a
//! directive before a default value). So this never accepts a document pest refuses nor reads
//! one differently; the tests check that against pest on a corpus and on variations of it.

use std::collections::hash_map::{Entry, HashMap};

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, FragmentDefinition, FragmentSpread,
    InlineFragment, OperationDefinition, OperationType, Selection, SelectionSet, Type, TypeCondition,
    VariableDefinition,
};
use async_graphql::parser::{Error, Pos, Positioned};
use async_graphql::{Name, Number};
use async_graphql_value::Value;

/// pest's limit on nested selection sets, which it reports as an error (so this hands over).
const MAX_SELECTION_DEPTH: usize = 64;
/// Nested lists and objects in an argument beyond this are handed to pest.
const MAX_VALUE_DEPTH: usize = 32;
/// Nested list types (`[[[Int]]]`) beyond this are handed to pest.
const MAX_TYPE_DEPTH: usize = 16;

/// `text` parsed as an executable document: as async-graphql's `parse_query` would, and with
/// its errors.
pub fn parse_query(text: &str) -> Result<ExecutableDocument, Error> {
    match Parser::new(text).document() {
        Some(document) => Ok(document),
        None => async_graphql::parser::parse_query(text),
    }
}

/// Each method reads one part of the grammar at `at`, the next byte not yet read, and returns
/// `None` for anything it does not handle, ending the attempt.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// One-based, as pest's positions: `\n` starts a line.
    line: usize,
    /// Where columns count from: after the last `\r` or `\n` (pest resets the column at either).
    line_start: usize,
    /// A column is a count of characters; in an ASCII text, of bytes.
    ascii: bool,
    /// Otherwise, characters are counted from where the last position was taken, not from the
    /// line's start each time: a long line would take time quadratic in its length.
    counted: (usize, usize),
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            at: 0,
            line: 1,
            line_start: 0,
            ascii: text.is_ascii(),
            counted: (0, 0),
        }
    }

    fn document(mut self) -> Option<ExecutableDocument> {
        let mut anonymous = None;
        let mut named = HashMap::new();
        let mut fragments = HashMap::new();
        self.skip_ignored();
        while self.at < self.bytes.len() {
            let pos = self.pos();
            let (name, operation) = if self.peek() == Some(b'{') {
                // The query shorthand: an anonymous query with nothing but its selections.
                let selection_set = self.selection_set(MAX_SELECTION_DEPTH)?;
                let operation = OperationDefinition {
                    ty: OperationType::Query,
                    variable_definitions: Vec::new(),
                    directives: Vec::new(),
                    selection_set,
                };
                (None, operation)
            } else {
                let keyword = self.name_token()?;
                self.skip_ignored();
                let ty = match keyword {
                    "query" => OperationType::Query,
                    "mutation" => OperationType::Mutation,
                    "subscription" => OperationType::Subscription,
                    "fragment" => {
                        let (name, fragment) = self.fragment_definition()?;
                        match fragments.entry(name) {
                            Entry::Occupied(_) => return None,
                            Entry::Vacant(entry) => entry.insert(Positioned::new(fragment, pos)),
                        };
                        continue;
                    }
                    _ => return None,
                };
                self.named_operation(ty)?
            };
            let operation = Positioned::new(operation, pos);
            match name {
                None if anonymous.is_none() => anonymous = Some(operation),
                Some(name) => match named.entry(name) {
                    Entry::Occupied(_) => return None,
                    Entry::Vacant(entry) => {
                        entry.insert(operation);
                    }
                },
                None => return None,
            }
        }
        let operations = match anonymous {
            Some(_) if !named.is_empty() => return None,
            Some(operation) => DocumentOperations::Single(operation),
            None if named.is_empty() => return None,
            None => DocumentOperations::Multiple(named),
        };
        Some(ExecutableDocument { operations, fragments })
    }

    /// After the operation type: `Name? VariableDefinitions? Directives? SelectionSet`.
    fn named_operation(&mut self, ty: OperationType) -> Option<(Option<Name>, OperationDefinition)> {
        let name = match self.peek() {
            Some(byte) if is_name_start(byte) => Some(self.name()?.node),
            _ => None,
        };
        let mut variable_definitions = Vec::new();
        if self.eat(b'(') {
            while !self.eat(b')') {
                variable_definitions.push(self.variable_definition()?);
            }
        }
        let directives = self.directives()?;
        let selection_set = self.selection_set(MAX_SELECTION_DEPTH)?;
        Some((name, OperationDefinition { ty, variable_definitions, directives, selection_set }))
    }

    /// `$name: Type Directives? (= ConstValue)?`, in pest's order (directives first).
    fn variable_definition(&mut self) -> Option<Positioned<VariableDefinition>> {
        let pos = self.pos();
        self.expect(b'$')?;
        let name = self.name()?;
        self.expect(b':')?;
        let var_type = self.type_()?;
        let directives = self.directives()?;
        let default_value = if self.eat(b'=') {
            let value = self.value(0)?;
            Some(Positioned::new(value.node.into_const()?, value.pos))
        } else {
            None
        };
        Some(Positioned::new(VariableDefinition { name, var_type, directives, default_value }, pos))
    }

    /// A type, read as pest reads it: as one token, with nothing between its parts.
    fn type_(&mut self) -> Option<Positioned<Type>> {
        let pos = self.pos();
        let start = self.at;
        self.at = type_end(self.bytes, start, 0)?;
        let ty = Type::new(&self.text[start..self.at])?;
        self.skip_ignored();
        Some(Positioned::new(ty, pos))
    }

    /// `{ Selection+ }`, with `depth` more levels allowed below it.
    fn selection_set(&mut self, depth: usize) -> Option<Positioned<SelectionSet>> {
        let pos = self.pos();
        self.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            items.push(self.selection(depth)?);
            if self.eat(b'}') {
                return Some(Positioned::new(SelectionSet { items }, pos));
            }
        }
    }

    fn selection(&mut self, depth: usize) -> Option<Positioned<Selection>> {
        let pos = self.pos();
        let selection = if self.bytes[self.at..].starts_with(b"...") {
            self.at += 3;
            self.skip_ignored();
            self.fragment_selection(pos, depth)?
        } else {
            Selection::Field(Positioned::new(self.field(depth)?, pos))
        };
        Some(Positioned::new(selection, pos))
    }

    /// `alias: name(arguments) @directives { … }`.
    fn field(&mut self, depth: usize) -> Option<Field> {
        let first = self.name()?;
        let (alias, name) = if self.eat(b':') { (Some(first), self.name()?) } else { (None, first) };
        let arguments = self.arguments()?;
        let directives = self.directives()?;
        let selection_set = match self.peek() {
            Some(b'{') => self.selection_set(depth.checked_sub(1)?)?,
            _ => Positioned::default(),
        };
        Some(Field { alias, name, arguments, directives, selection_set })
    }

    /// After `...`: a fragment spread, or an inline fragment with or without a type condition.
    fn fragment_selection(&mut self, pos: Pos, depth: usize) -> Option<Selection> {
        let type_condition = match self.peek() {
            Some(b'{' | b'@') => None,
            Some(byte) if is_name_start(byte) && !self.at_type_condition() => {
                let fragment_name = self.name()?;
                let directives = self.directives()?;
                let spread = FragmentSpread { fragment_name, directives };
                return Some(Selection::FragmentSpread(Positioned::new(spread, pos)));
            }
            Some(_) => Some(self.type_condition()?),
            None => return None,
        };
        let directives = self.directives()?;
        let selection_set = self.selection_set(depth.checked_sub(1)?)?;
        let fragment = InlineFragment { type_condition, directives, selection_set };
        Some(Selection::InlineFragment(Positioned::new(fragment, pos)))
    }

    /// After `fragment`: `Name TypeCondition Directives? SelectionSet`.
    fn fragment_definition(&mut self) -> Option<(Name, FragmentDefinition)> {
        let name = self.name()?.node;
        if !self.at_type_condition() {
            return None;
        }
        let type_condition = self.type_condition()?;
        let directives = self.directives()?;
        let selection_set = self.selection_set(MAX_SELECTION_DEPTH)?;
        Some((name, FragmentDefinition { type_condition, directives, selection_set }))
    }

    /// Whether `on` follows, then whitespace: pest's type condition, a single token in which no
    /// comment may come between `on` and the type's name. An `on` not followed by whitespace
    /// is handed to pest.
    fn at_type_condition(&self) -> bool {
        let rest = &self.bytes[self.at..];
        rest.starts_with(b"on") && rest.get(2).is_none_or(|&byte| !is_name_continue(byte))
    }

    fn type_condition(&mut self) -> Option<Positioned<TypeCondition>> {
        let pos = self.pos();
        if !self.at_type_condition() {
            return None;
        }
        self.at += 2;
        let before = self.at;
        self.skip_whitespace();
        if self.at == before || !self.peek().is_some_and(is_name_start) {
            return None;
        }
        let on = self.name()?;
        Some(Positioned::new(TypeCondition { on }, pos))
    }

    /// `@name(arguments)`, any number of them.
    fn directives(&mut self) -> Option<Vec<Positioned<Directive>>> {
        let mut directives = Vec::new();
        while self.peek() == Some(b'@') {
            let pos = self.pos();
            self.at += 1;
            self.skip_ignored();
            let name = self.name()?;
            let arguments = self.arguments()?;
            directives.push(Positioned::new(Directive { name, arguments }, pos));
        }
        Some(directives)
    }

    /// `(name: value …)`, at least one, if a `(` is next.
    fn arguments(&mut self) -> Option<Vec<(Positioned<Name>, Positioned<Value>)>> {
        let mut arguments = Vec::new();
        if self.eat(b'(') {
            loop {
                let name = self.name()?;
                self.expect(b':')?;
                arguments.push((name, self.value(0)?));
                if self.eat(b')') {
                    break;
                }
            }
        }
        Some(arguments)
    }

    /// A value, nested `depth` lists and objects deep.
    fn value(&mut self, depth: usize) -> Option<Positioned<Value>> {
        let pos = self.pos();
        let value = match self.peek()? {
            b'$' => {
                self.at += 1;
                self.skip_ignored();
                Value::Variable(self.name()?.node)
            }
            b'-' | b'0'..=b'9' => Value::Number(self.number()?),
            b'"' => Value::String(self.string()?),
            b'[' if depth < MAX_VALUE_DEPTH => {
                self.at += 1;
                self.skip_ignored();
                let mut items = Vec::new();
                while !self.eat(b']') {
                    items.push(self.value(depth + 1)?.node);
                }
                Value::List(items)
            }
            b'{' if depth < MAX_VALUE_DEPTH => {
                self.at += 1;
                self.skip_ignored();
                let mut fields = IndexMap::new();
                while !self.eat(b'}') {
                    let name = self.name()?.node;
                    self.expect(b':')?;
                    fields.insert(name, self.value(depth + 1)?.node);
                }
                Value::Object(fields)
            }
            byte if is_name_start(byte) => {
                let name = self.name_token()?;
                let value = match name {
                    "true" => Value::Boolean(true),
                    "false" => Value::Boolean(false),
                    "null" => Value::Null,
                    // pest reads `trueish` as `true`, then `ish`.
                    _ if ["true", "false", "null"].iter().any(|word| name.starts_with(word)) => return None,
                    _ => Value::Enum(Name::new(name)),
                };
                self.skip_ignored();
                value
            }
            _ => return None,
        };
        Some(Positioned::new(value, pos))
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, not followed by a name, converted as
    /// pest's caller does.
    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let digits = |parser: &mut Self| {
            let from = parser.at;
            while parser.peek().is_some_and(|byte| byte.is_ascii_digit()) {
                parser.at += 1;
            }
            parser.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        if !digits(self) || (leading_zero && self.at - start > 1 + usize::from(self.bytes[start] == b'-')) {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        if self.peek().is_some_and(|byte| is_name_start(byte) || byte == b'.') {
            return None;
        }
        let number = self.text[start..self.at].parse().ok()?;
        self.skip_ignored();
        Some(number)
    }

    /// A `"…"` string (a block string is handed to pest), its escapes resolved.
    fn string(&mut self) -> Option<String> {
        self.expect_byte(b'"')?;
        if self.peek() == Some(b'"') && self.bytes.get(self.at + 1) == Some(&b'"') {
            return None;
        }
        let start = self.at;
        let mut escaped = false;
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => break,
                b'\r' | b'\n' => return None,
                b'\\' => {
                    escaped = true;
                    let length = match *self.bytes.get(self.at + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' => {
                            let hex = self.bytes.get(self.at + 2..self.at + 6)?;
                            let surrogate = matches!(hex[0], b'd' | b'D')
                                && matches!(hex[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F');
                            if surrogate || !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            6
                        }
                        _ => return None,
                    };
                    self.at += length;
                }
                _ => self.at += 1,
            }
        }
        let content = &self.text[start..self.at];
        self.at += 1;
        self.skip_ignored();
        Some(if escaped { unescape(content)? } else { content.to_owned() })
    }

    /// A name, at its position, and what follows it skipped.
    fn name(&mut self) -> Option<Positioned<Name>> {
        let pos = self.pos();
        let name = Name::new(self.name_token()?);
        self.skip_ignored();
        Some(Positioned::new(name, pos))
    }

    /// `[_A-Za-z][_0-9A-Za-z]*`, nothing after it skipped.
    fn name_token(&mut self) -> Option<&'a str> {
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        self.at += 1;
        while self.peek().is_some_and(is_name_continue) {
            self.at += 1;
        }
        Some(&self.text[start..self.at])
    }

    /// Where the next byte is, as pest counts: lines from `\n`, columns in characters.
    fn pos(&mut self) -> Pos {
        let column = if self.ascii {
            self.at - self.line_start
        } else {
            let (mut from, mut characters) = self.counted;
            if from < self.line_start {
                (from, characters) = (self.line_start, 0);
            }
            characters += self.text[from..self.at].chars().count();
            self.counted = (self.at, characters);
            characters
        };
        Pos { line: self.line, column: column + 1 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Reads `byte` and what follows it, if `byte` is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.at += 1;
            self.skip_ignored();
        }
        next
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// `byte`, with nothing after it skipped (inside a token).
    fn expect_byte(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Whitespace, commas, byte-order marks and comments.
    fn skip_ignored(&mut self) {
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'#') {
                return;
            }
            while self.peek().is_some_and(|byte| byte != b'\n' && byte != b'\r') {
                self.at += 1;
            }
        }
    }

    /// What pest's grammar calls whitespace: no comments.
    fn skip_whitespace(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b',' => self.at += 1,
                b'\n' => {
                    self.at += 1;
                    self.line += 1;
                    self.line_start = self.at;
                }
                b'\r' => {
                    self.at += 1;
                    self.line_start = self.at;
                }
                0xEF if self.bytes[self.at..].starts_with("\u{feff}".as_bytes()) => self.at += 3,
                _ => return,
            }
        }
    }
}

/// Where a type that starts at `at` ends: `Name` or `[Type]`, then `!` if there, with nothing in
/// between.
fn type_end(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    let mut end = match bytes.get(at)? {
        b'[' if depth < MAX_TYPE_DEPTH => {
            let inner = type_end(bytes, at + 1, depth + 1)?;
            (bytes.get(inner) == Some(&b']')).then_some(inner + 1)?
        }
        &byte if is_name_start(byte) => {
            let mut end = at + 1;
            while bytes.get(end).is_some_and(|&byte| is_name_continue(byte)) {
                end += 1;
            }
            end
        }
        _ => return None,
    };
    if bytes.get(end) == Some(&b'!') {
        end += 1;
    }
    Some(end)
}

/// A string's content with its escapes resolved (already checked to be valid ones).
fn unescape(content: &str) -> Option<String> {
    let mut value = String::with_capacity(content.len());
    let mut chars = content.chars();
    while let Some(char) = chars.next() {
        if char != '\\' {
            value.push(char);
            continue;
        }
        value.push(match chars.next()? {
            'b' => '\x08',
            'f' => '\x0C',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            other => other,
        });
    }
    Some(value)
}

fn is_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_name_continue(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents in every shape this parser reads, and in the corners it hands to pest.
    const CORPUS: &[&str] = &[
        include_str!("../../tests/clients/operations/readme-operations.graphql"),
        include_str!("../../tests/clients/introspection-query.graphql"),
        "{ __typename }",
        "query One($arn: ID!) { taskExecution(arn: $arn) {\n    taskExecutionArn status bytesWritten options { verifyMode } result { totalDuration } } }",
        "query A { a } query B { b: a(x: 1) } fragment F on T { f } fragment G on T { ...F }",
        "mutation M($in: [Input!]! @d(x: $y) = [{ a: 1, b: [2.5, -3e10, \"x\"] }], $n: Int) @op { m(in: $in) }",
        "subscription { s(filter: { statuses: [SUCCESS, ERROR], task: null, on: true, f: false }) { a } }",
        "query Q($a: [[Int!]]!, $b: String = \"caf\\u00e9 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\") { a(x: $a, y: $b) }",
        "{ a { ... on T { b } ... @include(if: $x) { c } ... { d } ...F @skip(if: false) } }",
        "\u{feff}# leading comment\r\n{\r\n  a # trailing\r  b,,,c\t@ d\n}",
        "{ a(s: \"é ü 漢字\") { b } c }",
        "query ($x: Int = -0, $y: Float = 0.5, $z: Float = 1E+2, $w: Float = 12e-3) { a }",
        "{ a(o: { k: 1, k: 2, j: [] , l: {} }) }",
        "{ alias : field ( arg : $ var ) @ dir }",
        "query query { query } query mutation { fragment: on }",
        "{ a } fragment on on on { on }",
        "{ ...onX }",
        "{ a(x: [true-1, null\"s\"]) }",
        "{ a(x: 9223372036854775808, z: 123456789012345678901234567890, y: 1.5e300) }",
        // Handed to pest: its readings differ from the specification's, or are errors.
        "{ a(x: trueish) }",
        "{ a(x: 1.7976931348623157e309) }",
        "{ a(x: nullable) }",
        "{ a(x: [01]) }",
        "queryFoo { a }",
        "query ($a: [ Int ]) { a }",
        "query ($a: Int = 1 @d) { a }",
        "{ a(s: \"\"\"block\n  string\"\"\") }",
        "{ a(s: \"\\ud83d\\ude00\") }",
        "{ ...on }",
        "{ ... on # c\n T { a } }",
        "{ a } { b }",
        "query A { a } { b }",
        "query A { a } query A { b }",
        "fragment F on T { a } fragment F on T { b } { c }",
        "fragment F on T { a }",
        "",
        "{ }",
        "{ a() }",
        "{ a(x: 1.) }",
        "{ a(x: 1.5.3) }",
        "{ a(x: 1e) }",
        "{ a(x: 1x) }",
        "{ a(x: -) }",
        "{ a(x: \"unterminated) }",
        "{ a(x: \"bad \\q escape\") }",
        "{ a(x: \"line\nbreak\") }",
        "{ a(x: $) }",
        "query ($x: Int = $y) { a }",
        "{ a ",
        "{ a } }",
    ];

    /// A document as text, positions included, its maps in name order.
    fn canonical(document: &ExecutableDocument) -> String {
        let mut operations: Vec<String> = match &document.operations {
            DocumentOperations::Single(operation) => vec![format!("{operation:?}")],
            DocumentOperations::Multiple(named) => named.iter().map(|entry| format!("{entry:?}")).collect(),
        };
        operations.sort();
        let mut fragments: Vec<String> =
            document.fragments.iter().map(|entry| format!("{entry:?}")).collect();
        fragments.sort();
        format!("{operations:#?}\n{fragments:#?}")
    }

    /// Whether this parser read `text` (true) or handed it over, having checked that what it
    /// read is what pest reads, and that it handed over whatever pest refuses.
    fn agrees_with_pest(text: &str) -> bool {
        let fast = Parser::new(text).document();
        match (fast, async_graphql::parser::parse_query(text)) {
            (Some(fast), Ok(pest)) => {
                assert_eq!(canonical(&fast), canonical(&pest), "read differently: {text:?}");
                true
            }
            (Some(fast), Err(error)) => panic!("read {text:?}, which pest refuses ({error}), as {fast:?}"),
            (None, _) => false,
        }
    }

    #[test]
    fn reads_what_pest_reads_and_hands_over_the_rest() {
        let read: Vec<&str> = CORPUS.iter().copied().filter(|text| agrees_with_pest(text)).collect();
        let first_handed_over = CORPUS.iter().position(|text| text.starts_with("{ a(x: trueish)")).unwrap();
        assert_eq!(
            read,
            CORPUS[..first_handed_over],
            "each of the common shapes is read here, not handed over"
        );
    }

    /// Each corpus document edited at random, many times: one to three inserted, deleted or
    /// replaced characters, whitespace, comments or characters from outside ASCII. Most
    /// edits make a document pest refuses or reads otherwise; each must agree.
    #[test]
    fn agrees_with_pest_on_edited_documents() {
        const EDITS: usize = 600;
        const INSERTS: &[&str] = &[
            " ", "\n", "\r", "\r\n", ",", "\t", "#c\n", "\u{feff}", "é", "{", "}", "(", ")", "[", "]", ":",
            "$", "@", "!", "...", "=", "\"", "\\", "-", "0", "1", ".", "e", "on ", "_", "x", "true", "null",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut random = |bound: usize| {
            // xorshift64*: the same edits on every run.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound.max(1)
        };
        let (mut read, mut total) = (0, 0);
        for text in CORPUS {
            for _ in 0..EDITS {
                let mut edited = text.to_string();
                for _ in 0..=random(3) {
                    let boundaries: Vec<usize> =
                        (0..=edited.len()).filter(|&at| edited.is_char_boundary(at)).collect();
                    let at = boundaries[random(boundaries.len())];
                    let next = boundaries.iter().copied().find(|&end| end > at).unwrap_or(at);
                    let insert = INSERTS[random(INSERTS.len())];
                    edited = match random(3) {
                        0 => format!("{}{insert}{}", &edited[..at], &edited[at..]),
                        1 => format!("{}{}", &edited[..at], &edited[next..]),
                        _ => format!("{}{insert}{}", &edited[..at], &edited[next..]),
                    };
                }
                total += 1;
                read += usize::from(agrees_with_pest(&edited));
            }
        }
        assert!(read * 10 > total, "only {read} of {total} edited documents were read here");
    }

    #[test]
    fn positions_on_a_long_line_outside_ascii_agree() {
        let fields: String = (0..2_000).map(|n| format!("f{n}(s: \"é{n}\") ")).collect();
        assert!(agrees_with_pest(&format!("query A {{ {fields}}}\nquery B {{ {fields}}}")));
    }

    #[test]
    fn a_document_pest_refuses_gets_pests_error() {
        let error = parse_query("{ a(x: 1x) }").unwrap_err();
        let expected = async_graphql::parser::parse_query("{ a(x: 1x) }").unwrap_err();
        assert_eq!(error, expected);
    }

    #[test]
    fn selections_nest_as_deep_as_pest_allows() {
        for depth in [MAX_SELECTION_DEPTH, MAX_SELECTION_DEPTH + 1] {
            let text = format!("{}x{}", "{ a ".repeat(depth + 1), " }".repeat(depth + 1));
            assert_eq!(agrees_with_pest(&text), depth == MAX_SELECTION_DEPTH, "{depth} deep");
        }
    }
}

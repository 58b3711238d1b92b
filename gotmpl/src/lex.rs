//! The lexer: Go's `text/template/parse` lexing rules, producing all items at once.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    LeftDelim,
    RightDelim,
    Identifier,
    Field,
    Variable,
    Dot,
    CharConstant,
    Number,
    Str,
    RawStr,
    Bool,
    Nil,
    Pipe,
    Declare,
    Assign,
    LeftParen,
    RightParen,
    Space,
    Char,
    Keyword,
    Eof,
    Error,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub kind: Kind,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            Kind::Eof => write!(f, "EOF"),
            Kind::Error => write!(f, "{}", self.val),
            Kind::Keyword | Kind::Nil => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", crate::fmt::go_quote(&head))
            }
            _ => write!(f, "{}", crate::fmt::go_quote(&self.val)),
        }
    }
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1])
}

fn has_right_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0]) && b[1] == b'-'
}

struct Lexer<'a> {
    input: &'a str,
    left: &'a str,
    right: &'a str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: i32,
    items: Vec<Item>,
}

/// Lex `input`; the last item is `Eof` or `Error`.
pub(crate) fn lex(input: &str, left: &str, right: &str) -> Vec<Item> {
    let left = if left.is_empty() { "{{" } else { left };
    let right = if right.is_empty() { "}}" } else { right };
    let mut l = Lexer {
        input,
        left,
        right,
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        paren_depth: 0,
        items: Vec::new(),
    };
    l.run();
    l.items
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn emit(&mut self, kind: Kind) {
        let val = self.input[self.start..self.pos].to_string();
        self.items.push(Item {
            kind,
            pos: self.start,
            val,
            line: self.start_line,
        });
        self.ignore();
    }

    fn ignore(&mut self) {
        self.line = self.start_line + self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn error(&mut self, msg: String) {
        self.items.push(Item {
            kind: Kind::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek() {
            Some(c) if set.contains(c) => {
                self.next();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim(rest) && rest[2..].starts_with(self.right) {
            return (true, true);
        }
        (rest.starts_with(self.right), false)
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if c.is_ascii() && is_space(c as u8) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(self.right),
        }
    }

    fn run(&mut self) {
        loop {
            // Text up to the next left delimiter.
            match self.rest().find(self.left) {
                Some(x) => {
                    let delim_at = self.pos + x;
                    let after = delim_at + self.left.len();
                    let mut text_end = delim_at;
                    if has_left_trim(&self.input[after..]) {
                        text_end = self.start
                            + self.input[self.start..delim_at]
                                .trim_end_matches([' ', '\t', '\r', '\n'])
                                .len();
                    }
                    if text_end > self.start {
                        self.pos = text_end;
                        self.emit(Kind::Text);
                    }
                    self.pos = delim_at;
                    self.ignore();
                    if !self.left_delim() {
                        return;
                    }
                }
                None => {
                    self.pos = self.input.len();
                    if self.pos > self.start {
                        self.emit(Kind::Text);
                    }
                    self.emit(Kind::Eof);
                    return;
                }
            }
        }
    }

    /// At a left delimiter: lex a comment or an action. False on error.
    fn left_delim(&mut self) -> bool {
        self.pos += self.left.len();
        let trim = has_left_trim(self.rest());
        let after_marker = if trim { 2 } else { 0 };
        if self.input[self.pos + after_marker..].starts_with("/*") {
            self.pos += after_marker + 2;
            let Some(x) = self.rest().find("*/") else {
                self.error("unclosed comment".into());
                return false;
            };
            self.pos += x + 2;
            let (delim, trim_right) = self.at_right_delim();
            if !delim {
                self.error("comment ends before closing delimiter".into());
                return false;
            }
            if trim_right {
                self.pos += 2;
            }
            self.pos += self.right.len();
            if trim_right {
                let rest = self.rest();
                self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
            }
            self.ignore();
            return true;
        }
        self.emit(Kind::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        self.inside_action()
    }

    fn inside_action(&mut self) -> bool {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth != 0 {
                    self.error("unclosed left paren".into());
                    return false;
                }
                if trim {
                    self.pos += 2;
                    self.ignore();
                }
                self.pos += self.right.len();
                self.emit(Kind::RightDelim);
                if trim {
                    let rest = self.rest();
                    self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
                    self.ignore();
                }
                return true;
            }
            let Some(c) = self.next() else {
                self.error("unclosed action".into());
                return false;
            };
            let ok = match c {
                ' ' | '\t' | '\r' | '\n' => {
                    self.backup(c);
                    self.space();
                    true
                }
                '=' => {
                    self.emit(Kind::Assign);
                    true
                }
                ':' => {
                    if self.next() != Some('=') {
                        self.error("expected :=".into());
                        return false;
                    }
                    self.emit(Kind::Declare);
                    true
                }
                '|' => {
                    self.emit(Kind::Pipe);
                    true
                }
                '"' => self.quote(),
                '`' => self.raw_quote(),
                '$' => self.field_or_variable(Kind::Variable),
                '\'' => self.char_const(),
                '.' if !matches!(self.peek(), Some('0'..='9')) => {
                    self.field_or_variable(Kind::Field)
                }
                '.' | '+' | '-' | '0'..='9' => {
                    self.backup(c);
                    self.number()
                }
                c if is_alnum(c) => {
                    self.backup(c);
                    self.identifier()
                }
                '(' => {
                    self.paren_depth += 1;
                    self.emit(Kind::LeftParen);
                    true
                }
                ')' => {
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        self.error("unexpected right paren".into());
                        return false;
                    }
                    self.emit(Kind::RightParen);
                    true
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.emit(Kind::Char);
                    true
                }
                c => {
                    self.error(format!(
                        "unrecognized character in action: {}",
                        crate::fmt::unicode_hash(c)
                    ));
                    false
                }
            };
            if !ok {
                return false;
            }
        }
    }

    fn space(&mut self) {
        while let Some(c) = self.peek() {
            if !(c.is_ascii() && is_space(c as u8)) {
                break;
            }
            self.next();
        }
        // A trim-marked right delimiter starts with a space: leave that space for it.
        let before = &self.input[self.pos - 1..];
        if has_right_trim(before) && before[2..].starts_with(self.right) {
            self.pos -= 1;
            if self.input.as_bytes()[self.pos] == b'\n' {
                self.line -= 1;
            }
            if self.pos == self.start {
                return;
            }
        }
        self.emit(Kind::Space);
    }

    fn identifier(&mut self) -> bool {
        while let Some(c) = self.peek() {
            if !is_alnum(c) {
                break;
            }
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character {}", crate::fmt::unicode_hash(c)));
            return false;
        }
        let word = &self.input[self.start..self.pos];
        let kind = if KEYWORDS.contains(&word) {
            Kind::Keyword
        } else if word == "nil" {
            Kind::Nil
        } else if word == "true" || word == "false" {
            Kind::Bool
        } else if word.starts_with('.') {
            Kind::Field
        } else {
            Kind::Identifier
        };
        self.emit(kind);
        true
    }

    fn field_or_variable(&mut self, kind: Kind) -> bool {
        if self.at_terminator() {
            self.emit(if kind == Kind::Variable {
                Kind::Variable
            } else {
                Kind::Dot
            });
            return true;
        }
        while let Some(c) = self.peek() {
            if !is_alnum(c) {
                break;
            }
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or(' ');
            self.error(format!("bad character {}", crate::fmt::unicode_hash(c)));
            return false;
        }
        self.emit(kind);
        true
    }

    fn char_const(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(c) if c != '\n' => {}
                    _ => {
                        self.error("unterminated character constant".into());
                        return false;
                    }
                },
                None | Some('\n') => {
                    self.error("unterminated character constant".into());
                    return false;
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::CharConstant);
        true
    }

    fn quote(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(c) if c != '\n' => {}
                    _ => {
                        self.error("unterminated quoted string".into());
                        return false;
                    }
                },
                None | Some('\n') => {
                    self.error("unterminated quoted string".into());
                    return false;
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::Str);
        true
    }

    fn raw_quote(&mut self) -> bool {
        loop {
            match self.next() {
                None => {
                    self.error("unterminated raw quoted string".into());
                    return false;
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::RawStr);
        true
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alnum) {
            self.next();
            return false;
        }
        true
    }

    fn number(&mut self) -> bool {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            self.error(format!(
                "bad number syntax: {}",
                crate::fmt::go_quote(&text)
            ));
            return false;
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // Complex numbers are not supported: report as Go would for a malformed one.
            let ok = self.scan_number() && self.input[..self.pos].ends_with('i');
            if !ok {
                let text = self.input[self.start..self.pos].to_string();
                self.error(format!(
                    "bad number syntax: {}",
                    crate::fmt::go_quote(&text)
                ));
                return false;
            }
        }
        self.emit(Kind::Number);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_carry_their_line() {
        let items = lex("[[ if .t ]]\nno end\n", "[[", "]]");
        let last = items.last().expect("an item");
        assert_eq!((last.kind, last.line), (Kind::Eof, 3), "{items:?}");
    }
}

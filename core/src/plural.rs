//! Counts in messages: `1 package`, `2 packages`, never `1 packages`.
use std::fmt;

/// `n` followed by the noun in the number `n` asks for; see [`count`].
#[derive(Clone, Copy, Debug)]
pub struct Count<'a> {
    n: usize,
    one: &'a str,
    many: Many<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Many<'a> {
    /// The singular with `s` appended.
    AddS,
    /// An irregular plural (`entries`, `misses`).
    Word(&'a str),
}

/// `n` and `noun`, with an `s` unless `n` is 1: `count(1, "package")` shows `1 package`,
/// `count(0, "package")` shows `0 packages`.
pub fn count(n: usize, noun: &str) -> Count<'_> {
    Count {
        n,
        one: noun,
        many: Many::AddS,
    }
}

/// [`count`] for a noun whose plural is not the singular plus `s`: `count_as(2, "miss",
/// "misses")`.
pub fn count_as<'a>(n: usize, one: &'a str, many: &'a str) -> Count<'a> {
    Count {
        n,
        one,
        many: Many::Word(many),
    }
}

impl fmt::Display for Count<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.n, self.many) {
            (1, _) => write!(f, "1 {}", self.one),
            (n, Many::AddS) => write!(f, "{n} {}s", self.one),
            (n, Many::Word(many)) => write!(f, "{n} {many}"),
        }
    }
}

/// `is` for one, `are` for any other number (`1 package is`, `2 packages are`).
pub fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "package").to_string(), "1 package");
        assert_eq!(count(0, "package").to_string(), "0 packages");
        assert_eq!(count(2, "package").to_string(), "2 packages");
        assert_eq!(count(21, "object").to_string(), "21 objects");
        assert_eq!(count_as(1, "miss", "misses").to_string(), "1 miss");
        assert_eq!(count_as(3, "miss", "misses").to_string(), "3 misses");
        assert_eq!((is_are(1), is_are(0), is_are(2)), ("is", "are", "are"));
    }
}

//! Redis-style glob matching for `KEYS`, `SCAN MATCH` and `CONFIG GET`:
//! `*`, `?`, `[abc]`, `[^a-z]`, and `\` to escape.
//!
//! The matcher backtracks only to the most recent `*`, which is enough for
//! globs (a later star can match anything an earlier one could), so the time
//! is O(pattern × subject) whatever the input: a hostile pattern like
//! `*a*a*a*a*b` cannot make it exponential.

pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    // Where to resume after the latest star: (pattern after star, subject).
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            p += 1;
            star = Some((p, s));
            continue;
        }
        if p < pattern.len()
            && let Some(next_p) = match_one(pattern, p, subject[s])
        {
            p = next_p;
            s += 1;
            continue;
        }
        match star {
            Some((star_p, star_s)) => {
                p = star_p;
                s = star_s + 1;
                star = Some((star_p, star_s + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches one subject byte against the pattern element at `p`; returns the
/// position after that element on a match.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => match_class(pattern, p + 1, c),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        literal => (literal == c).then_some(p + 1),
    }
}

/// Matches `c` against the class starting after `[` at `p`. An unterminated
/// class runs to the end of the pattern, as in Redis.
fn match_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            matched |= pattern[p + 1] == c;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (lo, hi) = (pattern[p].min(pattern[p + 2]), pattern[p].max(pattern[p + 2]));
            matched |= (lo..=hi).contains(&c);
            p += 3;
        } else {
            matched |= pattern[p] == c;
            p += 1;
        }
    }
    let after = (p + 1).min(pattern.len());
    (matched != negate).then_some(after)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn redis_examples() {
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*foo*bar", "xxfooyybar"));
        assert!(!m("*foo*bar", "xxfooyybaz"));
        assert!(m("[z-a]", "m"), "reversed ranges work as in Redis");
    }

    #[test]
    fn hostile_pattern_terminates() {
        // An exponential matcher would not finish this in any CI's lifetime;
        // this one does about 50 × 10,000 steps.
        let pattern = "*a".repeat(50) + "b";
        let subject = "a".repeat(10_000);
        assert!(!m(&pattern, &subject));
        assert!(m(&pattern[..pattern.len() - 1], &subject));
    }
}

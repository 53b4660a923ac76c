//! Password policy from `[auth.native.password]`: every failing rule is reported.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    MissingUppercase,
    MissingLowercase,
    MissingDigit,
    MissingSpecial,
}

impl PasswordProblem {
    /// Stable code sent in `reasons`.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::MissingUppercase => "missing_uppercase",
            Self::MissingLowercase => "missing_lowercase",
            Self::MissingDigit => "missing_digit",
            Self::MissingSpecial => "missing_special",
        }
    }
}

/// The special characters that satisfy `require_special` (the original
/// library's set, plus `-`, `_` and a few more that users expect to count).
const SPECIALS: &str = "!@#$%^&*(),.?\":{}|<>-_=+[]\\/;'`~";

/// `[auth.native.password]`: the rules a new password must meet.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_special: bool,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_special: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PasswordPolicy(PasswordConfig);

impl PasswordPolicy {
    pub fn new(config: PasswordConfig) -> Self {
        Self(config)
    }

    pub fn min_length(&self) -> usize {
        self.0.min_length
    }

    /// Lengths count characters (code points), not bytes.
    pub fn check(&self, password: &str) -> Vec<PasswordProblem> {
        let c = &self.0;
        let len = password.chars().count();
        let mut problems = Vec::new();
        if len < c.min_length || password.trim().is_empty() {
            problems.push(PasswordProblem::TooShort);
        }
        if len > c.max_length {
            problems.push(PasswordProblem::TooLong);
        }
        if c.require_uppercase && !password.chars().any(char::is_uppercase) {
            problems.push(PasswordProblem::MissingUppercase);
        }
        if c.require_lowercase && !password.chars().any(char::is_lowercase) {
            problems.push(PasswordProblem::MissingLowercase);
        }
        if c.require_digit && !password.chars().any(|ch| ch.is_ascii_digit()) {
            problems.push(PasswordProblem::MissingDigit);
        }
        if c.require_special && !password.chars().any(|ch| SPECIALS.contains(ch)) {
            problems.push(PasswordProblem::MissingSpecial);
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> PasswordPolicy {
        PasswordPolicy::new(PasswordConfig {
            min_length: 10,
            max_length: 20,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_special: true,
        })
    }

    #[test]
    fn reports_every_problem() {
        let problems = strict().check("abc");
        assert_eq!(
            problems,
            vec![
                PasswordProblem::TooShort,
                PasswordProblem::MissingUppercase,
                PasswordProblem::MissingDigit,
                PasswordProblem::MissingSpecial
            ]
        );
    }

    #[test]
    fn accepts_a_good_one_and_counts_chars() {
        assert!(strict().check("Abcdefgh1!").is_empty());
        let default = PasswordPolicy::new(PasswordConfig::default());
        assert!(
            default
                .check("ééééééé")
                .contains(&PasswordProblem::TooShort)
        );
        assert!(default.check("éééééééé").is_empty());
        assert!(
            default
                .check("        ")
                .contains(&PasswordProblem::TooShort)
        );
    }

    #[test]
    fn too_long() {
        assert!(
            strict()
                .check(&"Aa1!".repeat(6))
                .contains(&PasswordProblem::TooLong)
        );
    }
}

//! What a one-time token is for. A token is only ever spent for the purpose
//! it was issued with, so a reset link cannot confirm an address or sign in.

/// The purposes of one-time tokens, as stored in `one_time_tokens.purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The confirmation link mailed at sign-up.
    Confirm,
    /// A sign-in link.
    MagicLink,
    /// A password reset link (also mailed by an admin).
    Reset,
    /// The code the hosted pages give an app, for `POST /token`.
    AuthorizationCode,
    /// The same for a Cognito page sign-in (it holds sealed upstream tokens).
    CognitoAuthorizationCode,
    /// The one-time link that creates the first admin.
    AdminSetup,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::MagicLink => "magic_link",
            Self::Reset => "reset",
            Self::AuthorizationCode => "authorization_code",
            Self::CognitoAuthorizationCode => "cognito_authorization_code",
            Self::AdminSetup => "admin_setup",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Purpose;

    #[test]
    fn stored_names_are_distinct() {
        let all = [
            Purpose::Confirm,
            Purpose::MagicLink,
            Purpose::Reset,
            Purpose::AuthorizationCode,
            Purpose::CognitoAuthorizationCode,
            Purpose::AdminSetup,
        ];
        let names: std::collections::BTreeSet<_> = all.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), all.len());
    }
}

//! Plain types and rules: no I/O.

pub mod color;
pub mod device;
pub mod email;
pub mod i18n;
pub mod org;
pub mod password;
pub mod redirect;
pub mod token;
pub mod user;
pub mod webhook;

pub use email::Email;
pub use org::{OrgRole, OrgRoles, Slug};
pub use password::{PasswordPolicy, PasswordProblem};
pub use token::Purpose;
pub use user::{ExternalIdentity, Role, User};

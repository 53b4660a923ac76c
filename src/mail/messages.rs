//! The text of the messages derp sends. Lifetimes come from configuration.

use super::Mail;

/// Site name and URL shown in messages.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub url: String,
}

fn hours_text(hours: u64) -> String {
    if hours == 1 {
        "1 hour".into()
    } else {
        format!("{hours} hours")
    }
}

pub fn confirm_email(site: &Site, to: &str, link: &str, expire_hours: u64) -> Mail {
    Mail {
        to: to.to_string(),
        subject: format!("Confirm your email address for {}", site.name),
        text: format!(
            "Hello,\n\nPlease confirm your email address for {name} by opening this link:\n\n{link}\n\n\
             The link works once and expires in {life}.\n\
             If you did not sign up for {name}, ignore this message.\n\n-- {name} ({url})\n",
            name = site.name,
            url = site.url,
            life = hours_text(expire_hours)
        ),
        html: None,
    }
}

pub fn already_registered(site: &Site, to: &str, sign_in_url: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: format!("You already have an account at {}", site.name),
        text: format!(
            "Hello,\n\nSomeone (perhaps you) tried to sign up for {name} with this address, \
             but it already has an account.\nSign in here: {sign_in_url}\n\
             If you forgot your password, use \"Forgot password\" on that page.\n\
             If it was not you, ignore this message: nothing has changed.\n\n-- {name} ({url})\n",
            name = site.name,
            url = site.url
        ),
        html: None,
    }
}

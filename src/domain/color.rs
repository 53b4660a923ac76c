//! Brand colours made readable: the text colour on a button of the brand
//! colour, and a link colour that keeps WCAG AA contrast on light and dark
//! backgrounds, whatever colour `[hosted] primary_color` is.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

pub const WHITE: Rgb = Rgb(255, 255, 255);
/// The pages' text colour, used on light brand colours.
pub const INK: Rgb = Rgb(17, 24, 39);
/// The light card and the dark card the pages are drawn on.
pub const LIGHT_CARD: Rgb = WHITE;
pub const DARK_CARD: Rgb = Rgb(31, 41, 55);

/// WCAG AA for normal text.
pub const AA: f64 = 4.5;

impl Rgb {
    /// `#rgb` or `#rrggbb`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix('#')?;
        let digit = |c: char| c.to_digit(16).map(|d| d as u8);
        match hex.len() {
            3 => {
                let mut it = hex.chars().map(digit);
                let (r, g, b) = (it.next()??, it.next()??, it.next()??);
                Some(Self(r * 17, g * 17, b * 17))
            }
            6 => {
                let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
                Some(Self(byte(0)?, byte(2)?, byte(4)?))
            }
            _ => None,
        }
    }

    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Relative luminance (WCAG 2).
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0) + 0.7152 * channel(self.1) + 0.0722 * channel(self.2)
    }

    /// Mixes towards `other` by `t` (0: self, 1: other).
    fn mix(self, other: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

/// The WCAG contrast ratio of two colours (1 to 21).
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// Text on a button of colour `bg`: white or ink, whichever reads better,
/// or black for the mid greys where neither reaches AA (one of white and
/// black always does).
pub fn text_on(bg: Rgb) -> Rgb {
    let best = if contrast(WHITE, bg) >= contrast(INK, bg) {
        WHITE
    } else {
        INK
    };
    if contrast(best, bg) >= AA {
        best
    } else {
        Rgb(0, 0, 0)
    }
}

/// `color` moved towards black (on a light card) or white (on a dark card)
/// just far enough to reach AA against `card`.
pub fn readable_on(color: Rgb, card: Rgb) -> Rgb {
    if contrast(color, card) >= AA {
        return color;
    }
    let towards = if card.luminance() > 0.5 {
        Rgb(0, 0, 0)
    } else {
        WHITE
    };
    (1..=20)
        .map(|i| color.mix(towards, f64::from(i) / 20.0))
        .find(|c| contrast(*c, card) >= AA)
        .unwrap_or(towards)
}

/// The theme made from a brand colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub primary: Rgb,
    pub on_primary: Rgb,
    /// Links and focus rings on the light card.
    pub link: Rgb,
    /// Links and focus rings on the dark card (dark mode).
    pub link_dark: Rgb,
}

impl Theme {
    pub fn from_primary(primary: Rgb) -> Self {
        Self {
            primary,
            on_primary: text_on(primary),
            link: readable_on(primary, LIGHT_CARD),
            link_dark: readable_on(primary, DARK_CARD),
        }
    }

    /// The stylesheet that sets the theme's custom properties.
    pub fn css(&self) -> String {
        format!(
            ":root {{ --primary: {}; --on-primary: {}; --link: {}; }}\n\
             @media (prefers-color-scheme: dark) {{ :root {{ --link: {}; }} }}\n",
            self.primary.hex(),
            self.on_primary.hex(),
            self.link.hex(),
            self.link_dark.hex()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_hex() {
        assert_eq!(Rgb::parse("#fff"), Some(WHITE));
        assert_eq!(Rgb::parse("#4f46e5"), Some(Rgb(0x4f, 0x46, 0xe5)));
        assert_eq!(Rgb::parse("4f46e5"), None);
        assert_eq!(Rgb::parse("#12345"), None);
        assert_eq!(Rgb::parse("#gggggg"), None);
    }

    #[test]
    fn contrast_matches_wcag_figures() {
        assert!((contrast(WHITE, Rgb(0, 0, 0)) - 21.0).abs() < 0.01);
        // A yellow brand with white text: the 1.5:1 a user reported.
        let yellow = Rgb::parse("#ffd500").unwrap();
        assert!(contrast(WHITE, yellow) < 1.6);
    }

    #[test]
    fn every_brand_colour_gets_readable_buttons_and_links() {
        for hex in [
            "#ffd500", "#4f46e5", "#00ff00", "#777777", "#000000", "#ffffff", "#0ea5e9",
        ] {
            let t = Theme::from_primary(Rgb::parse(hex).unwrap());
            assert!(contrast(t.on_primary, t.primary) >= AA, "{hex} button text");
            assert!(contrast(t.link, LIGHT_CARD) >= AA, "{hex} links on light");
            assert!(
                contrast(t.link_dark, DARK_CARD) >= AA,
                "{hex} links on dark"
            );
        }
        // And every colour of a 16-step grid over the whole cube.
        for r in (0..=255).step_by(17) {
            for g in (0..=255).step_by(17) {
                for b in (0..=255).step_by(17) {
                    let t = Theme::from_primary(Rgb(r, g, b));
                    assert!(contrast(t.on_primary, t.primary) >= AA, "{r},{g},{b}");
                    assert!(contrast(t.link, LIGHT_CARD) >= AA, "{r},{g},{b}");
                    assert!(contrast(t.link_dark, DARK_CARD) >= AA, "{r},{g},{b}");
                }
            }
        }
        let yellow = Theme::from_primary(Rgb::parse("#ffd500").unwrap());
        assert_eq!(yellow.on_primary, INK, "dark text on a light brand");
        let indigo = Theme::from_primary(Rgb::parse("#4f46e5").unwrap());
        assert_eq!(indigo.on_primary, WHITE);
        assert_eq!(indigo.link, indigo.primary, "a dark brand is left as it is");
    }
}

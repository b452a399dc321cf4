//! UTM parameters: read from the link URL a visitor followed, merged into the destination.

use linktrace_domain::Utm;

/// The longest UTM value kept (longer ones are cut at a character boundary).
const MAX_VALUE_CHARS: usize = 255;

/// The UTM values in a query string (`utm_source=x&…`); other parameters are ignored, and
/// the first of repeated ones wins.
pub fn from_query(query: Option<&str>) -> Utm {
    let mut utm = Utm::default();
    let Some(query) = query else { return utm };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if let Some(slot) = utm.slot(&name) {
            if slot.is_empty() {
                *slot = value
                    .trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_VALUE_CHARS)
                    .collect();
            }
        }
    }
    utm
}

/// `destination` with each non-empty UTM value set in its query string (replacing the
/// destination's own value of that parameter). A destination that is not a URL is
/// returned as it is.
pub fn merge_into(destination: &str, utm: &Utm) -> String {
    if utm.is_empty() {
        return destination.to_owned();
    }
    let Ok(mut url) = url::Url::parse(destination) else {
        return destination.to_owned();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| {
            Utm::PARAMETERS
                .iter()
                .zip(utm.values())
                .all(|(parameter, value)| value.is_empty() || name != parameter)
        })
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        query.extend_pairs(kept);
        for (parameter, value) in Utm::PARAMETERS.iter().zip(utm.values()) {
            if !value.is_empty() {
                query.append_pair(parameter, value);
            }
        }
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_five_and_nothing_else() {
        let utm = from_query(Some(
            "utm_source=news%20letter&utm_medium=email&ref=x&utm_source=second&utm_content=",
        ));
        assert_eq!(utm.source, "news letter");
        assert_eq!(utm.medium, "email");
        assert_eq!(utm.content, "");
        assert!(from_query(None).is_empty());
        assert_eq!(
            from_query(Some(&format!("utm_term={}", "é".repeat(300))))
                .term
                .chars()
                .count(),
            255
        );
    }

    #[test]
    fn merges_into_the_destination_query() {
        let utm = Utm {
            source: "newsletter".into(),
            campaign: "black friday".into(),
            ..Utm::default()
        };
        assert_eq!(
            merge_into("https://shop.example/p?id=7&utm_source=old&utm_medium=keep#top", &utm),
            "https://shop.example/p?id=7&utm_medium=keep&utm_source=newsletter&utm_campaign=black+friday#top"
        );
        assert_eq!(
            merge_into("https://shop.example/", &utm),
            "https://shop.example/?utm_source=newsletter&utm_campaign=black+friday"
        );
        assert_eq!(
            merge_into("https://shop.example/?a=1", &Utm::default()),
            "https://shop.example/?a=1"
        );
        assert_eq!(
            merge_into("myapp://open", &utm),
            "myapp://open?utm_source=newsletter&utm_campaign=black+friday"
        );
    }
}

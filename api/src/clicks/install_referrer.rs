//! Google Play's install referrer (spec, "Attribution to the app"): a redirect to a Play
//! Store listing carries the click in its `referrer` parameter, which Play hands to the app
//! once installed (the Install Referrer API). The app sends it back as `installReferrer` on
//! `POST /api/v1/attributions` (`crate::attributions::referrer_click_id` reads it).

use linktrace_domain::Utm;

/// Whether `url` is a Google Play listing (`https://play.google.com/store/apps/details?id=…`).
fn is_play_listing(url: &url::Url) -> bool {
    url.host_str() == Some("play.google.com") && url.path().starts_with("/store/apps/details")
}

/// `target` with the click in its `referrer` parameter when it is a Google Play listing:
/// `linktrace_click_id=<id>` and the click's UTM values, appended with `&` to a referrer the
/// URL already had, URL-encoded as one parameter. Any other URL is returned as it is.
pub fn add_to_play_url(target: &str, click_id: &str, utm: &Utm) -> String {
    let Ok(mut url) = url::Url::parse(target) else {
        return target.to_owned();
    };
    if !is_play_listing(&url) {
        return target.to_owned();
    }
    let mut referrer = String::new();
    let mut others = Vec::new();
    for (name, value) in url.query_pairs() {
        if name == "referrer" && referrer.is_empty() {
            referrer = value.into_owned();
        } else if name != "referrer" {
            others.push((name.into_owned(), value.into_owned()));
        }
    }
    let ours = {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        pairs.append_pair("linktrace_click_id", click_id);
        for (parameter, value) in Utm::PARAMETERS.iter().zip(utm.values()) {
            if !value.is_empty() {
                pairs.append_pair(parameter, value);
            }
        }
        pairs.finish()
    };
    if !referrer.is_empty() {
        referrer.push('&');
    }
    referrer.push_str(&ours);
    url.query_pairs_mut()
        .clear()
        .extend_pairs(others)
        .append_pair("referrer", &referrer);
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referrer_of(url: &str) -> String {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(n, _)| n == "referrer")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_play_listing_carries_the_click_and_its_utm_values() {
        let utm = Utm {
            source: "news letter".into(),
            campaign: "spring".into(),
            ..Utm::default()
        };
        let out = add_to_play_url(
            "https://play.google.com/store/apps/details?id=com.acme",
            "c-1",
            &utm,
        );
        assert!(out.starts_with("https://play.google.com/store/apps/details?id=com.acme&referrer="));
        assert_eq!(
            referrer_of(&out),
            "linktrace_click_id=c-1&utm_source=news+letter&utm_campaign=spring"
        );
        // One parameter: its own `&` and `=` are encoded.
        assert!(out.contains("referrer=linktrace_click_id%3Dc-1%26utm_source%3D"));
    }

    #[test]
    fn an_existing_referrer_is_kept_and_other_urls_are_left_alone() {
        let out = add_to_play_url(
            "https://play.google.com/store/apps/details?id=com.acme&referrer=partner%3Dx",
            "c-2",
            &Utm::default(),
        );
        assert_eq!(referrer_of(&out), "partner=x&linktrace_click_id=c-2");
        for other in [
            "https://apps.apple.com/app/id1",
            "https://example.com/store/apps/details?id=x",
            "not a url",
        ] {
            assert_eq!(add_to_play_url(other, "c-3", &Utm::default()), other);
        }
    }
}

//! The page a link-preview fetcher (Slack, WhatsApp, iMessage, X …) gets instead of the
//! 302: the link's preview metadata as Open Graph and Twitter card tags.

use html_escape::{encode_double_quoted_attribute as attribute, encode_text as text};

use crate::links::Link;

pub fn page(link: &Link, public_url: &str) -> String {
    let title = link.title.as_deref().unwrap_or(&link.destination_url);
    let mut tags = vec![
        meta_property("og:type", "website"),
        meta_property("og:url", public_url),
        meta_property("og:title", title),
        meta_name("twitter:title", title),
    ];
    if let Some(description) = &link.description {
        tags.push(meta_name("description", description));
        tags.push(meta_property("og:description", description));
        tags.push(meta_name("twitter:description", description));
    }
    match &link.image_url {
        Some(image) => {
            tags.push(meta_property("og:image", image));
            tags.push(meta_name("twitter:image", image));
            tags.push(meta_name("twitter:card", "summary_large_image"));
        }
        None => tags.push(meta_name("twitter:card", "summary")),
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n<title>{}</title>\n{}\n</head>\
         <body><a href=\"{}\">{}</a></body></html>\n",
        text(title),
        tags.join("\n"),
        attribute(&link.destination_url),
        text(title),
    )
}

fn meta_property(property: &str, content: &str) -> String {
    format!(
        "<meta property=\"{property}\" content=\"{}\">",
        attribute(content)
    )
}

fn meta_name(name: &str, content: &str) -> String {
    format!("<meta name=\"{name}\" content=\"{}\">", attribute(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_the_customer_wrote() {
        let now = chrono::Utc::now();
        let link = Link {
            short_code: "abc12345".into(),
            account_id: uuid::Uuid::nil(),
            destination_url: "https://shop.example/?a=1&b=\"2\"".into(),
            ios_url: None,
            android_url: None,
            campaign: None,
            referrer_user_id: None,
            title: Some("Sale <now> & \"then\"".into()),
            description: None,
            image_url: Some("https://img.example/x.png".into()),
            utm: Default::default(),
            deep_link_path: None,
            data: Default::default(),
            attribution_window_hours: None,
            domain: None,
            tags: Vec::new(),
            rules: Vec::new(),
            max_clicks: None,
            exhausted_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let html = page(&link, "https://go.example/l/abc12345");
        assert!(
            html.contains(
                r#"<meta property="og:title" content="Sale &lt;now&gt; &amp; &quot;then&quot;">"#
            ),
            "{html}"
        );
        assert!(
            html.contains("<title>Sale &lt;now&gt; &amp; \"then\"</title>"),
            "{html}"
        );
        assert!(html.contains(r#"<meta name="twitter:card" content="summary_large_image">"#));
        assert!(html.contains(r#"<meta property="og:image" content="https://img.example/x.png">"#));
        assert!(!html.contains("<now>"));
    }
}

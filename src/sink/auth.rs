//! How a request proves who sends it: the auth schemes `sink.auth_scheme` names, and the one
//! header each builds from the token (or username and password), marked sensitive.

use std::str::FromStr;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::ExposeSecret;

use crate::secrets::Rotating;

/// The words `sink.auth_scheme` accepts (`header` takes a name: `header:X-Api-Key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum SchemeWord {
    Bearer,
    Splunk,
    Apikey,
    Raw,
    Basic,
    Header,
}

/// Which header carries the secret, and in what form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Splunk <token>` (Splunk HEC).
    Splunk,
    /// `Authorization: ApiKey <token>` (Elasticsearch's encoded API key).
    ApiKey,
    /// `Authorization: <token>`, nothing added (Akto's JWT).
    Raw,
    /// `Authorization: Basic base64(username:password)`.
    Basic,
    /// `<Name>: <token>`.
    Header(HeaderName),
}

impl FromStr for AuthScheme {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (word, name) = match text.split_once(':') {
            Some((word, name)) => (word, Some(name.trim())),
            None => (text, None),
        };
        let word = SchemeWord::from_str(word).map_err(|_| {
            format!(
                "`{text}` is not one of {} (header takes a name: header:X-Api-Key)",
                <SchemeWord as strum::VariantNames>::VARIANTS.join(", ")
            )
        })?;
        Ok(match (word, name) {
            (SchemeWord::Header, Some(name)) if !name.is_empty() => {
                let name = HeaderName::from_str(name).map_err(|_| format!("`{name}` is not a valid header name"))?;
                AuthScheme::Header(name)
            }
            (SchemeWord::Header, _) => return Err("header needs a name: header:X-Api-Key".to_string()),
            (_, Some(_)) => return Err(format!("`{text}`: only header takes a name")),
            (SchemeWord::Bearer, None) => AuthScheme::Bearer,
            (SchemeWord::Splunk, None) => AuthScheme::Splunk,
            (SchemeWord::Apikey, None) => AuthScheme::ApiKey,
            (SchemeWord::Raw, None) => AuthScheme::Raw,
            (SchemeWord::Basic, None) => AuthScheme::Basic,
        })
    }
}

impl std::fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word: &'static str = match self {
            AuthScheme::Bearer => SchemeWord::Bearer.into(),
            AuthScheme::Splunk => SchemeWord::Splunk.into(),
            AuthScheme::ApiKey => SchemeWord::Apikey.into(),
            AuthScheme::Raw => SchemeWord::Raw.into(),
            AuthScheme::Basic => SchemeWord::Basic.into(),
            AuthScheme::Header(name) => return write!(f, "header:{name}"),
        };
        f.write_str(word)
    }
}

/// The scheme and the secrets it is built from; exposed only when the header is built.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub scheme: AuthScheme,
    /// `sink.auth_token`: every scheme but `basic`.
    pub token: Option<Rotating>,
    /// `sink.username` and `sink.password`: `basic` only.
    pub username: String,
    pub password: Option<Rotating>,
}

impl Credentials {
    /// No credentials at all: requests go without an auth header.
    pub fn none(scheme: AuthScheme) -> Self {
        Self {
            scheme,
            token: None,
            username: String::new(),
            password: None,
        }
    }

    /// The header to send, if there is a secret to send; an error names the key whose
    /// value cannot be a header.
    pub fn header(&self) -> Result<Option<(HeaderName, HeaderValue)>, String> {
        let (name, text) = match &self.scheme {
            AuthScheme::Basic => {
                let Some(password) = &self.password else {
                    return Ok(None);
                };
                let pair = format!("{}:{}", self.username, password.current().expose_secret());
                (
                    AUTHORIZATION,
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)),
                )
            }
            scheme => {
                let Some(token) = &self.token else {
                    return Ok(None);
                };
                let token = token.current();
                let token = token.expose_secret();
                match scheme {
                    AuthScheme::Bearer => (AUTHORIZATION, format!("Bearer {token}")),
                    AuthScheme::Splunk => (AUTHORIZATION, format!("Splunk {token}")),
                    AuthScheme::ApiKey => (AUTHORIZATION, format!("ApiKey {token}")),
                    AuthScheme::Raw => (AUTHORIZATION, token.to_string()),
                    AuthScheme::Header(name) => (name.clone(), token.to_string()),
                    AuthScheme::Basic => return Ok(None),
                }
            }
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            let key = if self.scheme == AuthScheme::Basic {
                "sink.username / sink.password"
            } else {
                "sink.auth_token"
            };
            format!("{key} is not a valid header value")
        })?;
        value.set_sensitive(true);
        Ok(Some((name, value)))
    }

    /// The secrets a rotation may replace.
    pub fn rotating(&self) -> impl Iterator<Item = &Rotating> {
        self.token.iter().chain(self.password.iter())
    }

    /// Every secret text, so answers that echo one back can be scrubbed.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for secret in self.rotating() {
            out.push(secret.current().expose_secret().to_string());
        }
        if let Ok(Some((_, value))) = self.header()
            && let Ok(text) = value.to_str()
        {
            out.push(text.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token(scheme: &str) -> Credentials {
        Credentials {
            token: Some(Rotating::fixed("sink.auth_token", secrecy::SecretString::from("t0ken"))),
            ..Credentials::none(scheme.parse().expect("scheme"))
        }
    }

    fn header(c: &Credentials) -> (String, String) {
        let (name, value) = c.header().expect("valid").expect("present");
        assert!(value.is_sensitive(), "auth headers never show in Debug output");
        (name.to_string(), value.to_str().expect("ascii").to_string())
    }

    #[test]
    fn each_scheme_builds_its_documented_header() {
        assert_eq!(
            header(&with_token("bearer")),
            ("authorization".into(), "Bearer t0ken".into())
        );
        assert_eq!(
            header(&with_token("splunk")),
            ("authorization".into(), "Splunk t0ken".into())
        );
        assert_eq!(
            header(&with_token("apikey")),
            ("authorization".into(), "ApiKey t0ken".into())
        );
        assert_eq!(header(&with_token("raw")), ("authorization".into(), "t0ken".into()));
        assert_eq!(
            header(&with_token("header:X-Api-Key")),
            ("x-api-key".into(), "t0ken".into())
        );
        let basic = Credentials {
            username: "elastic".into(),
            password: Some(Rotating::fixed("sink.password", secrecy::SecretString::from("s3cret"))),
            ..Credentials::none(AuthScheme::Basic)
        };
        // base64("elastic:s3cret")
        assert_eq!(
            header(&basic),
            ("authorization".into(), "Basic ZWxhc3RpYzpzM2NyZXQ=".into())
        );
    }

    #[test]
    fn no_secret_means_no_header() {
        assert_eq!(Credentials::none(AuthScheme::Bearer).header(), Ok(None));
        assert_eq!(Credentials::none(AuthScheme::Basic).header(), Ok(None));
    }

    #[test]
    fn unknown_words_and_nameless_headers_are_refused_and_the_form_round_trips() {
        assert!("token".parse::<AuthScheme>().is_err());
        assert!("header".parse::<AuthScheme>().is_err());
        assert!("header:".parse::<AuthScheme>().is_err());
        assert!("bearer:x".parse::<AuthScheme>().is_err());
        assert!("header:bad name".parse::<AuthScheme>().is_err());
        for text in ["bearer", "splunk", "apikey", "raw", "basic", "header:x-api-key"] {
            assert_eq!(text.parse::<AuthScheme>().expect("parses").to_string(), text);
        }
    }
}

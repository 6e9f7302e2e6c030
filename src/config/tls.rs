//! `<section>.ca_file`, `sink.client_cert_file` and `sink.client_key_file` → the client
//! builder's [`TlsSettings`]: read, parsed and proven to build a client here, so a wrong file
//! stops start-up naming its key instead of failing the first request.

use std::path::Path;

use super::ConfigError;
use crate::upstream::http::TlsSettings;

/// The TLS settings of `section` from its `ca_file` and, for the sink, its client
/// certificate and key (both or neither).
pub(super) fn tls(section: &str, ca_file: &str, client: Option<(&str, &str)>) -> Result<TlsSettings, ConfigError> {
    let mut tls = TlsSettings::default();
    let ca_file = ca_file.trim();
    if !ca_file.is_empty() {
        let key = format!("{section}.ca_file");
        let pem = read(&key, ca_file)?;
        tls.extra_roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ConfigError::new(&key, format!("`{ca_file}` is not a PEM certificate bundle: {e}")))?;
        if tls.extra_roots.is_empty() {
            return Err(ConfigError::new(
                key,
                format!("`{ca_file}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            ));
        }
    }
    if let Some((cert, private_key)) = client {
        let (cert, private_key) = (cert.trim(), private_key.trim());
        let cert_key = format!("{section}.client_cert_file");
        let private_key_key = format!("{section}.client_key_file");
        match (cert.is_empty(), private_key.is_empty()) {
            (true, true) => {}
            (false, true) => {
                return Err(ConfigError::new(
                    private_key_key,
                    format!("is required with {cert_key}"),
                ));
            }
            (true, false) => {
                return Err(ConfigError::new(
                    cert_key,
                    format!("is required with {private_key_key}"),
                ));
            }
            (false, false) => {
                let mut pem = read(&cert_key, cert)?;
                pem.push(b'\n');
                pem.extend(read(&private_key_key, private_key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    ConfigError::new(
                        &cert_key,
                        format!(
                            "`{cert}` and `{private_key}` are not a PEM certificate chain and its private key (PKCS#8, RSA or SEC1): {}",
                            crate::errors::chain(&e)
                        ),
                    )
                })?;
                tls.identity = Some(identity);
            }
        }
    }
    // What parsing let through (a certificate that is not DER inside its PEM armour) stops
    // the client builder: find it now. Without files there is nothing to find, and a trial
    // client costs a read of the system's root certificates.
    if tls.extra_roots.is_empty() && tls.identity.is_none() {
        return Ok(tls);
    }
    crate::upstream::http::client(std::time::Duration::from_secs(1), &tls).map_err(|e| {
        ConfigError::new(
            format!("{section}.ca_file"),
            format!("the TLS settings cannot be used: {}", crate::errors::chain(&e)),
        )
    })?;
    Ok(tls)
}

fn read(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(Path::new(path)).map_err(|e| ConfigError::new(key, format!("cannot read `{path}`: {e}")))
}

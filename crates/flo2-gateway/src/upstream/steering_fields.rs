//! Body fields that try to choose the upstream or its credentials.
//!
//! Clients of other gateways send `api_base`, `base_url`, `api_key`, `extra_headers` and
//! friends in the body, and some OpenAI-compatible servers and proxies honour them. flo2 never
//! does: the organization's stored key and base URL are the only ones used. The fields are
//! removed at any depth before a body is forwarded, on every endpoint (chat, messages,
//! embeddings), so no upstream that would honour them ever sees them.
//!
//! Names are matched as a class, not as spellings: ASCII case, `_` and `-` are ignored, so
//! `api_key`, `apiKey`, `API-KEY` and `Api_Key` are one name.

/// The longest name in [`is_steering`]'s list, normalized; longer keys cannot match.
const LONGEST: usize = 24;

/// Whether a body key is a steering field.
pub(crate) fn is_steering(key: &str) -> bool {
    if key.len() > 2 * LONGEST {
        return false;
    }
    let mut normalized = [0u8; LONGEST];
    let mut n = 0;
    for b in key.bytes() {
        if matches!(b, b'_' | b'-') {
            continue;
        }
        if n == LONGEST || !b.is_ascii() {
            return false;
        }
        normalized[n] = b.to_ascii_lowercase();
        n += 1;
    }
    matches!(
        &normalized[..n],
        b"apibase"
            | b"apibaseurl"
            | b"baseurl"
            | b"apiurl"
            | b"apiendpoint"
            | b"azureendpoint"
            | b"apikey"
            | b"userapikey"
            | b"apitype"
            | b"apiversion"
            | b"extraheaders"
            | b"defaultheaders"
            | b"customllmprovider"
            | b"azureadtoken"
            | b"azuredeployment"
            | b"deploymentid"
            | b"organization"
            | b"awsaccesskeyid"
            | b"awssecretaccesskey"
            | b"awssessiontoken"
            | b"awsregionname"
            | b"awsprofilename"
            | b"vertexcredentials"
            | b"vertexproject"
            | b"vertexlocation"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_steering_field_is_one_name() {
        for key in [
            "api_base",
            "base_url",
            "baseURL",
            "BASE-URL",
            "api_key",
            "apiKey",
            "API_KEY",
            "Api-Key",
            "extra_headers",
            "extraHeaders",
            "custom_llm_provider",
            "azure_ad_token",
            "organization",
            "aws_secret_access_key",
            "vertex_credentials",
            "__api__key__",
        ] {
            assert!(is_steering(key), "{key}");
        }
    }

    #[test]
    fn ordinary_fields_are_not_steering() {
        for key in [
            "model",
            "messages",
            "max_tokens",
            "metadata",
            "user",
            "tools",
            "api",
            "key",
            "headers",
            "apikeys",
            "",
            "ápikey",
            &"a".repeat(100),
        ] {
            assert!(!is_steering(key), "{key}");
        }
    }
}

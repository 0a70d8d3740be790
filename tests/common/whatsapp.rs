//! Signed WhatsApp (Meta Cloud API) webhooks for tests: one POST carrying a batch of text
//! messages from one sender, signed the way Meta signs (`X-Hub-Signature-256` over the body).

use super::RawRequest;
use porter_providers::Secret;

/// A POST to `/webhooks/whatsapp` with one text message per id, signed with `secret`.
pub fn messages<S: AsRef<str>>(secret: &str, ids: &[S]) -> RawRequest {
    let messages: Vec<String> = ids
        .iter()
        .map(|id| {
            let id = id.as_ref();
            format!(r#"{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}"#)
        })
        .collect();
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{}]}}}}]}}]}}"#,
        messages.join(",")
    );
    let signature = porter_providers::meta::signature(&Secret::new(secret), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

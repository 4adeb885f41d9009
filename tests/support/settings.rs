//! Settings of a handler that submits to the fake Batch service with Shared Key, for the storage
//! account `acct` (whose key is Azurite's well-known one, so nothing here is a real secret).

use blob2batch::config::Settings;

use super::fake_batch;

/// The storage account key tests sign SAS URLs with.
pub const STORAGE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The environment of such a handler, the fake answering at `batch_url`.
pub fn handler_env(batch_url: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "STORAGE_ACCOUNT_URL",
            "https://acct.blob.core.windows.net".into(),
        ),
        ("STORAGE_ACCOUNT_KEY", STORAGE_KEY.into()),
        ("BATCH_ACCOUNT_URL", batch_url.to_string()),
        ("BATCH_ACCOUNT_NAME", fake_batch::ACCOUNT.into()),
        ("BATCH_ACCOUNT_KEY", fake_batch::KEY.into()),
        (
            "WORDCOUNT_IMAGE",
            "example.azurecr.io/wordcount:1.0.0".into(),
        ),
    ]
}

/// Settings read from `pairs`; a later pair overrides an earlier one of the same name.
pub fn from_pairs(pairs: &[(&str, String)]) -> Settings {
    Settings::from_lookup(|name| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

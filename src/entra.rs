//! Entra ID credentials chosen from the environment, for every Azure service we call (Batch, and
//! Storage when no account key is configured).
//!
//! `azure_identity` 1.0 has no `DefaultAzureCredential`, so [`select_entra_credential`] picks one
//! explicitly, in the order the deployment targets make likely: managed identity (App Service /
//! Functions), workload identity (Kubernetes), a service principal secret, and the Azure CLI for a
//! developer's machine.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use secrecy::{ExposeSecret, SecretString};

/// The environment does not describe a credential that can be built.
#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    #[error("{credential} needs {}", missing.join(", "))]
    MissingEnvironment {
        credential: &'static str,
        missing: Vec<&'static str>,
    },
    #[error("cannot create {credential}")]
    Credential {
        credential: &'static str,
        #[source]
        source: azure_core::Error,
    },
}

/// The Entra ID credential the environment calls for.
#[derive(Clone)]
pub(crate) enum EntraCredentialChoice {
    /// `IDENTITY_ENDPOINT` is set (App Service, Functions). User-assigned when `AZURE_CLIENT_ID` is.
    ManagedIdentity { client_id: Option<String> },
    /// `AZURE_FEDERATED_TOKEN_FILE` is set (Kubernetes workload identity).
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// `AZURE_CLIENT_SECRET` is set, with `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretString,
    },
    /// None of the above: the developer's `az login`.
    AzureCli,
}

impl fmt::Debug for EntraCredentialChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntraCredentialChoice::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            EntraCredentialChoice::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .finish(),
            EntraCredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"[redacted]")
                .finish(),
            EntraCredentialChoice::AzureCli => f.write_str("AzureCli"),
        }
    }
}

impl EntraCredentialChoice {
    /// The `azure_identity` type this choice builds.
    pub fn name(&self) -> &'static str {
        match self {
            EntraCredentialChoice::ManagedIdentity { .. } => "ManagedIdentityCredential",
            EntraCredentialChoice::WorkloadIdentity { .. } => "WorkloadIdentityCredential",
            EntraCredentialChoice::ClientSecret { .. } => "ClientSecretCredential",
            EntraCredentialChoice::AzureCli => "AzureCliCredential",
        }
    }

    pub fn build(self) -> Result<Arc<dyn TokenCredential>, EntraError> {
        let credential = self.name();
        let failed = |source: azure_core::Error| EntraError::Credential { credential, source };
        Ok(match self {
            EntraCredentialChoice::ManagedIdentity { client_id } => {
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.map(UserAssignedId::ClientId),
                    ..Default::default()
                };
                ManagedIdentityCredential::new(Some(options)).map_err(failed)?
            }
            EntraCredentialChoice::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => {
                let options = WorkloadIdentityCredentialOptions {
                    tenant_id: Some(tenant_id),
                    client_id: Some(client_id),
                    token_file_path: Some(token_file),
                    ..Default::default()
                };
                WorkloadIdentityCredential::new(Some(options)).map_err(failed)?
            }
            EntraCredentialChoice::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => ClientSecretCredential::new(
                &tenant_id,
                client_id,
                Secret::new(secret.expose_secret().to_string()),
                None,
            )
            .map_err(failed)?,
            EntraCredentialChoice::AzureCli => AzureCliCredential::new(None).map_err(failed)?,
        })
    }
}

/// Chooses the Entra ID credential from environment variables read through `env` (empty values
/// count as unset), so that the choice can be tested without touching the process environment.
pub(crate) fn select_entra_credential(
    env: impl Fn(&str) -> Option<String>,
) -> Result<EntraCredentialChoice, EntraError> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let require = |credential: &'static str, names: &[&'static str]| {
        let missing: Vec<&'static str> =
            names.iter().copied().filter(|n| var(n).is_none()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(EntraError::MissingEnvironment {
                credential,
                missing,
            })
        }
    };
    if var("IDENTITY_ENDPOINT").is_some() {
        return Ok(EntraCredentialChoice::ManagedIdentity {
            client_id: var("AZURE_CLIENT_ID"),
        });
    }
    if let Some(token_file) = var("AZURE_FEDERATED_TOKEN_FILE") {
        require(
            "WorkloadIdentityCredential",
            &["AZURE_TENANT_ID", "AZURE_CLIENT_ID"],
        )?;
        return Ok(EntraCredentialChoice::WorkloadIdentity {
            tenant_id: var("AZURE_TENANT_ID").unwrap_or_default(),
            client_id: var("AZURE_CLIENT_ID").unwrap_or_default(),
            token_file: PathBuf::from(token_file),
        });
    }
    if let Some(secret) = var("AZURE_CLIENT_SECRET") {
        require(
            "ClientSecretCredential",
            &["AZURE_TENANT_ID", "AZURE_CLIENT_ID"],
        )?;
        return Ok(EntraCredentialChoice::ClientSecret {
            tenant_id: var("AZURE_TENANT_ID").unwrap_or_default(),
            client_id: var("AZURE_CLIENT_ID").unwrap_or_default(),
            secret: SecretString::from(secret),
        });
    }
    Ok(EntraCredentialChoice::AzureCli)
}

/// The Entra ID credential for this process's environment (see [`select_entra_credential`]).
pub(crate) fn entra_credential_from_env() -> Result<Arc<dyn TokenCredential>, EntraError> {
    let choice = select_entra_credential(|name| std::env::var(name).ok())?;
    match &choice {
        EntraCredentialChoice::ManagedIdentity { client_id } => tracing::info!(
            credential = choice.name(),
            user_assigned_client_id = client_id.as_deref(),
            "authenticating with Entra ID"
        ),
        EntraCredentialChoice::WorkloadIdentity { client_id, .. }
        | EntraCredentialChoice::ClientSecret { client_id, .. } => tracing::info!(
            credential = choice.name(),
            client_id = client_id.as_str(),
            "authenticating with Entra ID"
        ),
        EntraCredentialChoice::AzureCli => {
            tracing::info!(credential = choice.name(), "authenticating with Entra ID")
        }
    }
    choice.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn managed_identity_wins_when_identity_endpoint_is_set() {
        let choice = select_entra_credential(env(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41234/msi/token"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
        ]))
        .unwrap();
        assert!(matches!(
            choice,
            EntraCredentialChoice::ManagedIdentity { client_id: None }
        ));
        let user_assigned = select_entra_credential(env(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41234/msi/token"),
            ("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
        ]))
        .unwrap();
        match user_assigned {
            EntraCredentialChoice::ManagedIdentity { client_id } => {
                assert_eq!(
                    client_id.as_deref(),
                    Some("11111111-1111-1111-1111-111111111111")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn workload_identity_when_a_federated_token_file_is_set() {
        let choice = select_entra_credential(env(&[
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(choice.name(), "WorkloadIdentityCredential");
        let missing =
            select_entra_credential(env(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")])).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "WorkloadIdentityCredential needs AZURE_TENANT_ID, AZURE_CLIENT_ID"
        );
    }

    #[test]
    fn client_secret_needs_tenant_and_client_ids() {
        let choice = select_entra_credential(env(&[
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "c"),
        ]))
        .unwrap();
        assert_eq!(choice.name(), "ClientSecretCredential");
        let printed = format!("{choice:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        let err = select_entra_credential(env(&[
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_CLIENT_ID", "c"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ClientSecretCredential needs AZURE_TENANT_ID"
        );
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn azure_cli_otherwise_and_empty_values_count_as_unset() {
        let choice = select_entra_credential(env(&[
            ("IDENTITY_ENDPOINT", ""),
            ("AZURE_CLIENT_SECRET", " "),
        ]))
        .unwrap();
        assert!(matches!(choice, EntraCredentialChoice::AzureCli));
    }

    #[test]
    fn every_choice_builds() {
        // The workload identity credential reads its token file when it is created.
        let token_file =
            std::env::temp_dir().join(format!("federated-token-{}", uuid::Uuid::new_v4()));
        std::fs::write(&token_file, "header.payload.signature").unwrap();
        for choice in [
            EntraCredentialChoice::ManagedIdentity {
                client_id: Some("c".into()),
            },
            EntraCredentialChoice::WorkloadIdentity {
                tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
                client_id: "c".into(),
                token_file: token_file.clone(),
            },
            EntraCredentialChoice::ClientSecret {
                tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
                client_id: "c".into(),
                secret: SecretString::from("s3cret"),
            },
            EntraCredentialChoice::AzureCli,
        ] {
            let name = choice.name();
            choice
                .build()
                .unwrap_or_else(|e| panic!("{name} does not build: {e}"));
        }
        let _ = std::fs::remove_file(token_file);
    }
}

//! Building an S3 client from a request's [`S3Settings`].

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Region;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use legacyflo_core::request::S3Settings;

/// Region used to sign requests when neither the request nor the AWS configuration names
/// one (S3-compatible stores usually accept any; AWS redirects to the bucket's region).
pub const FALLBACK_REGION: &str = "us-east-1";

/// Builds a client: credentials and settings from the standard AWS chain (environment
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `AWS_PROFILE` and the
/// shared config files, web identity, ECS and EC2 instance roles), then the request's
/// endpoint, region and path style on top. HTTPS uses rustls with the ring provider.
///
/// Nothing is sent here; credentials are resolved on the first request.
pub async fn client(settings: &S3Settings) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        builder = builder.region(Region::new(FALLBACK_REGION));
    }
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    builder = builder.force_path_style(settings.path_style);
    Client::from_conf(builder.build())
}

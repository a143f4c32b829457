use super::*;
use std::collections::HashMap;

struct FakeSecrets(HashMap<String, String>);

impl SecretLookup for FakeSecrets {
    fn env(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
    fn file(&self, path: &Path) -> std::io::Result<String> {
        self.0
            .get(&path.display().to_string())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

fn secrets() -> FakeSecrets {
    FakeSecrets(HashMap::from([
        ("SRC_PW".to_string(), "s3cret".to_string()),
        ("/pw.txt".to_string(), "filepw\n".to_string()),
    ]))
}

fn check(params: Params) -> Result<Request, RequestErrors> {
    Request::from_params_with(&params, &secrets())
}

#[test]
fn unknown_and_missing_type() {
    let e = check(Params::new()).err().unwrap_or_default();
    assert!(e.has(Field::Type));
    let e = check(Params::new().with(Field::Type, "FOO-S3-ZIP"))
        .err()
        .unwrap_or_default();
    assert!(
        e.to_string().contains("unknown request type `FOO-S3-ZIP`"),
        "{e}"
    );
}

#[test]
fn imap_source_needs_user_and_password() {
    let p = Params::new()
        .with(Field::Type, "IMAP-S3-ZIP")
        .with(Field::DestUrl, "out/x.zip");
    let e = check(p).err().unwrap_or_default();
    assert!(e.has(Field::SourceServer));
    assert!(e.has(Field::SourceUser));
    assert!(e.has(Field::SourcePasswordEnv));
    assert!(
        e.to_string()
            .contains("Source User ID (--source-user): missing"),
        "{e}"
    );
}

#[test]
fn gmail_preset_defaults_server_and_login_uses_domain() {
    let p = Params::new()
        .with(Field::Type, "GMAIL-S3-ZIP")
        .with(Field::SourceUser, "john")
        .with(Field::SourceDomain, "baya.com")
        .with(Field::SourcePasswordEnv, "SRC_PW")
        .with(Field::DestUrl, "out/");
    let r = check(p).map_err(|e| e.to_string());
    let Ok(r) = r else { panic!("{r:?}") };
    let SourceSpec::Imap {
        endpoint, preset, ..
    } = &r.source
    else {
        panic!("not imap")
    };
    assert_eq!(*preset, ImapPreset::Gmail);
    assert_eq!(endpoint.server, "imap.gmail.com");
    assert_eq!(endpoint.port, 993);
    assert_eq!(endpoint.login(), "john@baya.com");
    assert_eq!(endpoint.admin, None);
    assert_eq!(
        endpoint.password.as_ref().map(|s| s.expose()),
        Some("s3cret")
    );
    let DestSpec::File { location, .. } = &r.dest else {
        panic!("not file")
    };
    assert_eq!(location.to_string(), "out/john@baya.com.zip");
    assert!(!format!("{r:?}").contains("s3cret"));
}

#[test]
fn admin_user_logs_in_on_behalf_of_the_source_user() {
    let p = Params::new()
        .with(Field::Type, "IMAP-S3-ZIP")
        .with(Field::SourceServer, "imap.baya.com")
        .with(Field::SourceUser, "john")
        .with(Field::SourceDomain, "baya.com")
        .with(Field::SourceAdminUser, "admin@baya.com")
        .with(Field::SourcePasswordEnv, "SRC_PW")
        .with(Field::DestUrl, "out/");
    let r = check(p).map_err(|e| e.to_string());
    let Ok(r) = r else { panic!("{r:?}") };
    let SourceSpec::Imap { endpoint, .. } = &r.source else {
        panic!("not imap")
    };
    assert_eq!(endpoint.login(), "john@baya.com");
    assert_eq!(endpoint.admin.as_deref(), Some("admin@baya.com"));
    assert_eq!(
        Field::SourceAdminUser.service_name(),
        "Source Admin User ID"
    );
}

#[test]
fn dates_are_checked() {
    let base = Params::new()
        .with(Field::Type, "MBOX-S3-ZIP")
        .with(Field::SourceUrl, "/")
        .with(Field::DestUrl, "x.zip");
    let e = check(base.clone().with(Field::Since, "2020-13-01"))
        .err()
        .unwrap_or_default();
    assert!(
        e.to_string()
            .contains("Since (--since): `2020-13-01` is not a date in YYYY-MM-DD form"),
        "{e}"
    );
    let e = check(base.clone().with(Field::Since, "2020-1-1"))
        .err()
        .unwrap_or_default();
    assert!(e.has(Field::Since));
    let e = check(
        base.clone()
            .with(Field::Since, "2020-02-01")
            .with(Field::Before, "2020-02-01"),
    )
    .err()
    .unwrap_or_default();
    assert!(e.has(Field::Before), "{e}");
    let ok = check(
        base.with(Field::Since, "2020-01-01")
            .with(Field::Before, "2020-02-01"),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn file_source_must_exist_and_dest_must_be_zip() {
    let e = check(
        Params::new()
            .with(Field::Type, "MBOX-S3-ZIP")
            .with(Field::SourceUrl, "/definitely/not/here.mbox")
            .with(Field::DestUrl, "out/x.pst"),
    )
    .err()
    .unwrap_or_default();
    assert!(
        e.to_string()
            .contains("Source File (--source-url): `/definitely/not/here.mbox` does not exist"),
        "{e}"
    );
    assert!(e.has(Field::DestUrl), "{e}");
}

#[test]
fn vault_dest_rejects_reserved_folders_and_reads_password_file() {
    let p = Params::new()
        .with(Field::Type, "MBOX-VAULTASTIC4")
        .with(Field::SourceUrl, "s3://bucket/a.mbox")
        .with(Field::DestServer, "vault.example")
        .with(Field::DestUser, "john.smith")
        .with(Field::DestDomain, "baya-com.vaultastic.com")
        .with(Field::DestPasswordFile, "/pw.txt")
        .with(Field::DestFolder, "trash/old");
    let e = check(p.clone()).err().unwrap_or_default();
    assert!(e.has(Field::DestFolder), "{e}");
    let r = check(p.with(Field::DestFolder, "legacy/2019"));
    let Ok(r) = r else { panic!("{r:?}") };
    let DestSpec::Imap {
        endpoint, folder, ..
    } = &r.dest
    else {
        panic!("not imap")
    };
    assert_eq!(endpoint.login(), "john.smith@baya-com.vaultastic.com");
    assert_eq!(
        endpoint.password.as_ref().map(|s| s.expose()),
        Some("filepw")
    );
    assert_eq!(folder.segments(), ["legacy", "2019"]);
}

#[test]
fn folder_filter_rejects_pipes_and_quotes() {
    let e = check(
        Params::new()
            .with(Field::Type, "MBOX-S3-ZIP")
            .with(Field::SourceUrl, "/")
            .with(Field::DestUrl, "x.zip")
            .with(Field::Folder, "a|b"),
    )
    .err()
    .unwrap_or_default();
    assert!(e.has(Field::Folder));
}

#[test]
fn state_key_ignores_secret_sources() {
    let p = Params::new()
        .with(Field::Type, "MBOX-S3-ZIP")
        .with(Field::SourceUrl, "/")
        .with(Field::DestUrl, "x.zip");
    let a = check(p.clone()).map(|r| r.state_key()).unwrap_or_default();
    let b = check(p.clone().with(Field::Since, "2020-01-01"))
        .map(|r| r.state_key())
        .unwrap_or_default();
    assert!(a.starts_with("mbox-s3-zip-"));
    assert_ne!(a, b);
    // A deadline or line length tunes the run; the request is the same.
    let c = check(p.clone().with(Field::SourceCommandTimeout, "30"))
        .map(|r| r.state_key())
        .unwrap_or_default();
    assert_eq!(a, c);
}

#[test]
fn tls_fields_are_checked() {
    let base = imap_request();
    let r = check(base.clone().with(Field::SourceTls, "starttls"));
    let Ok(r) = r else { panic!("{r:?}") };
    let SourceSpec::Imap { endpoint, .. } = &r.source else {
        panic!("not imap")
    };
    assert_eq!(endpoint.tls, Some(ImapTls::StartTls));
    assert_eq!(endpoint.port, 143, "STARTTLS defaults to port 143");
    let e = check(base.clone().with(Field::SourceTls, "ssl3"))
        .err()
        .unwrap_or_default();
    assert!(e.has(Field::SourceTls), "{e}");
    let e = check(base.clone().with(Field::SourceCaFile, "/no/such/ca.pem"))
        .err()
        .unwrap_or_default();
    assert!(
        e.to_string().contains("Source CA File (--source-ca-file)"),
        "{e}"
    );
    let e = check(base.with(Field::SourceInsecure, "maybe"))
        .err()
        .unwrap_or_default();
    assert!(e.has(Field::SourceInsecure));
}

fn imap_request() -> Params {
    Params::new()
        .with(Field::Type, "IMAP-S3-ZIP")
        .with(Field::SourceServer, "imap.example.test")
        .with(Field::SourceUser, "u")
        .with(Field::SourcePasswordEnv, "SRC_PW")
        .with(Field::DestUrl, "out/x.zip")
}

#[test]
fn imap_limit_fields_are_parsed_and_checked() {
    let base = imap_request();
    let r = check(
        base.clone()
            .with(Field::SourceCommandTimeout, "10m")
            .with(Field::SourceMaxMessageSize, "64M")
            .with(Field::SourceMaxLineLength, "4096"),
    );
    let Ok(r) = r else { panic!("{r:?}") };
    let SourceSpec::Imap { endpoint, .. } = &r.source else {
        panic!("not imap")
    };
    assert_eq!(
        endpoint.limits,
        ImapLimits {
            command_timeout: Some(std::time::Duration::from_secs(600)),
            max_message_size: Some(64 << 20),
            max_line_length: Some(4096),
        }
    );
    let e = check(
        base.with(Field::SourceCommandTimeout, "0")
            .with(Field::SourceMaxMessageSize, "5T")
            .with(Field::SourceMaxLineLength, "12"),
    )
    .err()
    .unwrap_or_default();
    assert!(e.has(Field::SourceCommandTimeout), "{e}");
    assert!(e.has(Field::SourceMaxMessageSize), "{e}");
    assert!(e.has(Field::SourceMaxLineLength), "{e}");
    assert!(
        e.to_string()
            .contains("Source Max Message Size (--source-max-message-size)"),
        "{e}"
    );
}

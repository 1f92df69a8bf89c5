//! Writes `fixtures/v1/commons.redb`: a data dir as schema 1 leaves it.
use commons_storage::model::{DataKind, SignedBy};
use commons_storage::parse::Format;
use commons_storage::{NewContribution, NewDatanet, ReviewRequest};

fn signed(n: u8) -> SignedBy {
    SignedBy {
        signer: [7; 20],
        nonce: [n; 32],
        deadline: u64::MAX,
        signature: vec![0; 65],
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/commons.redb");
    std::fs::create_dir_all(out.parent().ok_or("no parent")?)?;
    let _ = std::fs::remove_file(&out);
    let (db, _) = commons_migrations::open(&out)?;
    let store = commons_storage::Store::from_database(db, Default::default())?;
    store.create_datanet(NewDatanet {
        slug: "fixture-v1".into(),
        name: "Fixture v1".into(),
        summary: "written by schema 1".into(),
        description: "# Fixture".into(),
        tags: vec!["fixture".into()],
        kind: DataKind::Text,
        private: false,
        signed: signed(1),
    })?;
    let bytes = b"first paragraph\n\nsecond paragraph\n".to_vec();
    let c = store.contribute(NewContribution {
        datanet: "fixture-v1".into(),
        file_name: "a.txt".into(),
        file_hash: *blake3::hash(&bytes).as_bytes(),
        bytes,
        format: Format::Txt,
        rows: vec!["first paragraph".into(), "second paragraph".into()],
        signed: signed(2),
    })?;
    store.review(ReviewRequest {
        datanet: "fixture-v1".into(),
        contributions: vec![c.id],
        accept: true,
        reason: None,
        signed: signed(3),
    })?;
    println!("wrote {}", out.display());
    Ok(())
}

//! What a component presents, as pure functions both the reading and the deciding steps use: the signer (and
//! subject) of its registered bytes, and which of a subject's users present it.

use super::reports::{RegisteredSignature, SubjectUser};
use super::*;

/// The signer of a component's registered bytes, and its subject.
pub(super) fn registered_signature(
    kind: ComponentKind,
    bytes: &[u8],
    subject_of: &dyn Fn(&crate::cert::Certificate) -> Result<String, String>,
) -> RegisteredSignature {
    let certificate = match kind.signer(bytes) {
        Ok(l) => l.certificate,
        Err(e) => return RegisteredSignature::Unsigned { reason: e.to_string() },
    };
    match (SigningCertificate::of(&certificate), subject_of(&certificate)) {
        (Some(c), Ok(subject)) => RegisteredSignature::Signed { certificate: c, subject },
        (None, _) => {
            RegisteredSignature::Unsigned { reason: "the signing certificate's validity cannot be read".into() }
        }
        (_, Err(reason)) => RegisteredSignature::Unsigned { reason },
    }
}

/// The users among `users` that present `subject`, with those whose subject cannot be told (in doubt, kept).
pub(super) fn presenting(users: &[SubjectUser], subject: &str) -> Vec<SubjectUser> {
    users.iter().filter(|u| u.subject.as_deref().is_none_or(|s| s == subject)).cloned().collect()
}

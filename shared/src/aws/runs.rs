//! The runs bucket on S3 ([`crate::ports::RunStore`]): objects are written
//! whole and read whole; the template's lifecycle rule expires them, so a
//! run leaves nothing behind for longer than that.

use crate::aws::fault;
use crate::error::Result;
use crate::ports::RunStore;

/// One bucket, through one client.
pub struct S3Runs<'a> {
    pub client: &'a aws_sdk_s3::Client,
    pub bucket: &'a str,
}

/// S3's rules for a bucket name: 3 to 63 lowercase letters, digits, dots
/// and hyphens, starting and ending with a letter or digit.
pub fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

impl RunStore for S3Runs<'_> {
    fn bucket(&self) -> &str {
        self.bucket
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(self.bucket)
            .key(key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| fault::classify("s3", "PutObject", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self
            .client
            .get_object()
            .bucket(self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => {
                let body = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| crate::Error::TransientAws {
                        service: "s3".into(),
                        operation: "GetObject".into(),
                        message: format!("reading s3://{}/{key}: {e}", self.bucket),
                        cause: Some(Box::new(e)),
                    })?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(fault::classify("s3", "GetObject", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_bucket_name;

    #[test]
    fn bucket_names_follow_s3s_rules() {
        for good in ["abc", "clonesync-runs-123456789012", "a.b-c"] {
            assert!(valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "Upper",
            "-start",
            "end-",
            "under_score",
            &"x".repeat(64),
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}

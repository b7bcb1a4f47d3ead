//! `pawql provision`: creates a stage's bucket, tables and SSM parameters from the one
//! definition in [`super::resources`], on whatever endpoint the SDK is pointed at (moto,
//! LocalStack, a sandbox account). Running it twice is harmless.

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType as DynamoKeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_sdk_ssm::types::ParameterType;

use super::resources::{self, parameter_path, KeyType, Resources, TableSpec};
use super::AwsClients;

/// Creates everything a stage needs and returns the names it created.
pub async fn provision(clients: &AwsClients, stage: &str) -> anyhow::Result<Resources> {
    let names = Resources::for_stage(stage);
    create_bucket(&clients.s3, &names.bucket).await?;
    for spec in resources::tables() {
        create_table(&clients.dynamodb, &spec, &spec.name(stage)).await?;
    }
    for (parameter, value) in names.parameters() {
        let name = format!("{}{parameter}", parameter_path(stage));
        clients
            .ssm
            .put_parameter()
            .name(&name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .with_context(|| format!("SSM PutParameter {name}"))?;
    }
    Ok(names)
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) => {}
        Err(err) => return Err(err).with_context(|| format!("S3 CreateBucket {bucket}")),
    }
    // The same protections serverless.yml declares: private and encrypted at rest.
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("S3 PutPublicAccessBlock {bucket}"))?;
    let sse = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(sse)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("S3 PutBucketEncryption {bucket}"))?;
    Ok(())
}

fn key(name: &str, key_type: DynamoKeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()?)
}

fn scalar(key_type: KeyType) -> ScalarAttributeType {
    match key_type {
        KeyType::S => ScalarAttributeType::S,
        KeyType::N => ScalarAttributeType::N,
    }
}

async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, spec: &TableSpec, name: &str) -> anyhow::Result<()> {
    let mut attributes = vec![spec.partition_key];
    attributes.extend(spec.sort_key);
    for index in &spec.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
    }
    attributes.sort_by_key(|(name, _)| *name);
    attributes.dedup_by_key(|(name, _)| *name);

    let mut request = dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.partition_key.0, DynamoKeyType::Hash)?);
    if let Some((sort, _)) = spec.sort_key {
        request = request.key_schema(key(sort, DynamoKeyType::Range)?);
    }
    for (attribute, key_type) in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(scalar(key_type))
                .build()?,
        );
    }
    for index in &spec.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.partition_key.0, DynamoKeyType::Hash)?)
                .key_schema(key(index.sort_key.0, DynamoKeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(if index.keys_only {
                            ProjectionType::KeysOnly
                        } else {
                            ProjectionType::All
                        })
                        .build(),
                )
                .build()?,
        );
    }
    if spec.stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("DynamoDB CreateTable {name}")),
    }
    if let Some(attribute) = spec.ttl_attribute {
        dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("DynamoDB UpdateTimeToLive {name}"))?;
    }
    Ok(())
}

#!/usr/bin/env bash
# Create the resources of playbooks/site.yml with plain AWS CLI calls, as a
# shell script without the toolkit would: the baseline that bench.py compares
# `invoke resources.setup` with. It assumes an empty emulator and is not
# idempotent. Needs: aws (CLI v1) on PATH, AWS_ENDPOINT_URL and test
# credentials in the environment, ZIP_FILE (the health function's package),
# DB_PORT, DB_NAME, DB_USER and DB_PASSWORD.
set -euo pipefail

env_name=${ENVIRONMENT:-local}
prefix="tutor-system-${env_name}"
account=000000000000
region=${AWS_DEFAULT_REGION:-us-east-1}
aws_() { aws --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }

# Storage
for bucket in "${prefix}-uploads" "${prefix}-assets"; do
  aws_ s3api create-bucket --bucket "$bucket" >/dev/null
  aws_ s3api put-bucket-encryption --bucket "$bucket" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
done
aws_ s3api put-bucket-versioning --bucket "${prefix}-uploads" --versioning-configuration Status=Enabled
aws_ s3api put-bucket-cors --bucket "${prefix}-uploads" --cors-configuration \
  '{"CORSRules":[{"AllowedMethods":["GET","PUT","POST"],"AllowedOrigins":["*"],"AllowedHeaders":["*"],"MaxAgeSeconds":3000}]}'

# Security
key_id=$(aws_ kms create-key --description "Encrypts the tutor system's secrets" --query KeyMetadata.KeyId)
aws_ kms create-alias --alias-name alias/tutor-system-secrets --target-key-id "$key_id"
aws_ kms enable-key-rotation --key-id "$key_id"

# Secrets
aws_ secretsmanager create-secret --name "tutor-system/${env_name}/database" --kms-key-id alias/tutor-system-secrets \
  --secret-string "{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":${DB_PORT},\"dbname\":\"${DB_NAME}\",\"username\":\"${DB_USER}\",\"password\":\"${DB_PASSWORD}\"}" >/dev/null
jwt=$(aws_ secretsmanager get-random-password --password-length 64 --exclude-characters "\"'\\/@" --query RandomPassword)
aws_ secretsmanager create-secret --name "tutor-system/${env_name}/jwt" --kms-key-id alias/tutor-system-secrets \
  --secret-string "{\"algorithm\":\"HS256\",\"expiration_hours\":24,\"secret_key\":\"${jwt}\"}" >/dev/null

# IAM
role="${prefix}-lambda-execution"
aws_ iam create-role --role-name "$role" --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws_ iam attach-role-policy --role-name "$role" \
  --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
aws_ iam put-role-policy --role-name "$role" --policy-name secrets-access --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"},{"Effect":"Allow","Action":["kms:Decrypt"],"Resource":"*"}]}'
aws_ iam put-role-policy --role-name "$role" --policy-name cognito-access --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cognito-idp:*"],"Resource":"*"}]}'

# Logs
function_name="${prefix}-health"
aws_ logs create-log-group --log-group-name "/aws/lambda/${function_name}"
aws_ logs put-retention-policy --log-group-name "/aws/lambda/${function_name}" --retention-in-days 7

# Functions
aws_ lambda create-function --function-name "$function_name" --runtime python3.11 \
  --handler handler.lambda_handler --role "arn:aws:iam::${account}:role/${role}" \
  --zip-file "fileb://${ZIP_FILE}" --timeout 10 --memory-size 128 \
  --environment "Variables={ENVIRONMENT=${env_name},AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL}}" >/dev/null
function_arn="arn:aws:lambda:${region}:${account}:function:${function_name}"

# API
api_id=$(aws_ apigateway create-rest-api --name "${prefix}-api" --query id)
root_id=$(aws_ apigateway get-resources --rest-api-id "$api_id" --query 'items[?path==`/`].id')
api_resource=$(aws_ apigateway create-resource --rest-api-id "$api_id" --parent-id "$root_id" --path-part api --query id)
health_resource=$(aws_ apigateway create-resource --rest-api-id "$api_id" --parent-id "$api_resource" --path-part health --query id)
aws_ apigateway put-method --rest-api-id "$api_id" --resource-id "$health_resource" --http-method GET \
  --authorization-type NONE >/dev/null
aws_ apigateway put-integration --rest-api-id "$api_id" --resource-id "$health_resource" --http-method GET \
  --type AWS_PROXY --integration-http-method POST \
  --uri "arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${function_arn}/invocations" >/dev/null
aws_ lambda add-permission --function-name "$function_name" --statement-id "apigateway-${api_id}" \
  --action lambda:InvokeFunction --principal apigateway.amazonaws.com \
  --source-arn "arn:aws:execute-api:${region}:${account}:${api_id}/*" >/dev/null
aws_ apigateway create-deployment --rest-api-id "$api_id" --stage-name local >/dev/null

# Authentication
pool_id=$(aws_ cognito-idp create-user-pool --pool-name "${prefix}-users" --auto-verified-attributes email \
  --username-attributes email \
  --policies 'PasswordPolicy={MinimumLength=8,RequireUppercase=true,RequireLowercase=true,RequireNumbers=true,RequireSymbols=false}' \
  --query UserPool.Id)
aws_ cognito-idp create-user-pool-client --user-pool-id "$pool_id" --client-name "${prefix}-web" \
  --explicit-auth-flows ALLOW_USER_PASSWORD_AUTH ALLOW_REFRESH_TOKEN_AUTH >/dev/null

# Email
aws_ ses verify-email-identity --email-address noreply@know-it-all-tutor.com

# Database
aws_ rds create-db-instance --db-instance-identifier "${prefix}-db" --engine postgres \
  --db-instance-class db.t3.micro --port "$DB_PORT" --db-name "$DB_NAME" --master-username "$DB_USER" \
  --master-user-password "$DB_PASSWORD" --allocated-storage 20 >/dev/null

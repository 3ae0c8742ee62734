#!/usr/bin/env bash
# Create the resources of playbooks/site.yml with plain AWS CLI calls, as a
# shell script without the toolkit would: the baseline that bench.py compares
# `invoke resources.setup` with. It assumes an empty emulator and is not
# idempotent. Needs: aws (CLI v1) on PATH, AWS_ENDPOINT_URL and test
# credentials in the environment, BUILD_DIR (the folder where resources.setup
# left each function's package.zip), DB_PORT, DB_NAME, DB_USER and DB_PASSWORD.
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
secret_prefix="tutor-system/${env_name}"
aws_ secretsmanager create-secret --name "${secret_prefix}/database" --kms-key-id alias/tutor-system-secrets \
  --description "PostgreSQL credentials of the tutor system" \
  --secret-string "{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":${DB_PORT},\"dbname\":\"${DB_NAME}\",\"username\":\"${DB_USER}\",\"password\":\"${DB_PASSWORD}\"}" >/dev/null
admin_password=$(aws_ secretsmanager get-random-password --password-length 32 --exclude-characters "\"'\\/@:?#[]%\`\$&+,;=" --query RandomPassword)
aws_ secretsmanager create-secret --name "${secret_prefix}/database-admin" --kms-key-id alias/tutor-system-secrets \
  --description "PostgreSQL role with CREATEROLE that the rotation function changes passwords with" \
  --secret-string "{\"engine\":\"postgres\",\"host\":\"127.0.0.1\",\"port\":${DB_PORT},\"dbname\":\"${DB_NAME}\",\"username\":\"${DB_USER}_rotation\",\"password\":\"${admin_password}\"}" >/dev/null
jwt=$(aws_ secretsmanager get-random-password --password-length 64 --exclude-characters "\"'\\/@" --query RandomPassword)
aws_ secretsmanager create-secret --name "${secret_prefix}/jwt" --kms-key-id alias/tutor-system-secrets \
  --description "JWT signing key of the tutor system" \
  --secret-string "{\"algorithm\":\"HS256\",\"expiration_hours\":24,\"secret_key\":\"${jwt}\"}" >/dev/null

# IAM
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
basic=arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
role="${prefix}-lambda-execution"
aws_ iam create-role --role-name "$role" --assume-role-policy-document "$trust" \
  --description "Runs the tutor system's Lambda functions" >/dev/null
aws_ iam attach-role-policy --role-name "$role" --policy-arn "$basic"
aws_ iam put-role-policy --role-name "$role" --policy-name secrets-access --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*"},{"Effect":"Allow","Action":["kms:Decrypt"],"Resource":"*"}]}'
aws_ iam put-role-policy --role-name "$role" --policy-name cognito-access --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cognito-idp:*"],"Resource":"*"}]}'
aws_ iam put-role-policy --role-name "$role" --policy-name rds-discovery --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"rds:DescribeDBInstances\"],\"Resource\":\"arn:aws:rds:*:${account}:db:${prefix}-db\"}]}"
rotation_role="${prefix}-secret-rotation"
aws_ iam create-role --role-name "$rotation_role" --assume-role-policy-document "$trust" \
  --description "Runs the function that rotates the tutor system's secrets" >/dev/null
aws_ iam attach-role-policy --role-name "$rotation_role" --policy-arn "$basic"
aws_ iam put-role-policy --role-name "$rotation_role" --policy-name rotate-secrets --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"secretsmanager:DescribeSecret\",\"secretsmanager:GetSecretValue\",\"secretsmanager:PutSecretValue\",\"secretsmanager:UpdateSecretVersionStage\"],\"Resource\":\"arn:aws:secretsmanager:*:${account}:secret:${secret_prefix}/*\"},{\"Effect\":\"Allow\",\"Action\":[\"secretsmanager:GetRandomPassword\"],\"Resource\":\"*\"},{\"Effect\":\"Allow\",\"Action\":[\"kms:Decrypt\",\"kms:GenerateDataKey\"],\"Resource\":\"*\"}]}"

# Logs
functions=(health post-confirmation example-secrets-usage secret-rotation auth me)
for short in "${functions[@]}"; do
  aws_ logs create-log-group --log-group-name "/aws/lambda/${prefix}-${short}"
  aws_ logs put-retention-policy --log-group-name "/aws/lambda/${prefix}-${short}" --retention-in-days 7
done

# Functions
environment_json() {
  printf '{"Variables":{"ENVIRONMENT":"%s","AWS_ENDPOINT_URL":"%s","DB_SECRET_NAME":"%s/database","JWT_SECRET_NAME":"%s/jwt","DB_MODE":"direct","DB_INSTANCE_IDENTIFIER":"%s-db","DB_SERVER":"%s"%s}}' \
    "$env_name" "$AWS_ENDPOINT_URL" "$secret_prefix" "$secret_prefix" "$prefix" "${POSTGRES_SERVER:-container}" "${1:-}"
}
create_function() {  # short name, role, timeout, memory, extra environment JSON members
  aws_ lambda create-function --function-name "${prefix}-$1" --runtime python3.11 \
    --handler handler.lambda_handler --role "arn:aws:iam::${account}:role/$2" \
    --zip-file "fileb://${BUILD_DIR}/${prefix}-$1/package.zip" --timeout "$3" --memory-size "$4" \
    --environment "$(environment_json "${5:-}")" >/dev/null
}
create_function health "$role" 10 128
create_function post-confirmation "$role" 10 256
create_function example-secrets-usage "$role" 10 256
create_function secret-rotation "$rotation_role" 30 256
function_arn() { echo "arn:aws:lambda:${region}:${account}:function:${prefix}-$1"; }

# Secret rotation: the schedule in tags, as the toolkit keeps it on the emulator
for secret in database jwt; do
  aws_ secretsmanager tag-resource --secret-id "${secret_prefix}/${secret}" --tags \
    "Key=localaws:rotation-lambda,Value=$(function_arn secret-rotation)" "Key=localaws:rotation-days,Value=2"
  aws_ lambda add-permission --function-name "${prefix}-secret-rotation" \
    --statement-id "secretsmanager-tutor-system-${env_name}-${secret}" --action lambda:InvokeFunction \
    --principal secretsmanager.amazonaws.com \
    --source-arn "$(aws_ secretsmanager describe-secret --secret-id "${secret_prefix}/${secret}" --query ARN)" >/dev/null
done

# Authentication
pool_id=$(aws_ cognito-idp create-user-pool --pool-name "${prefix}-users" --auto-verified-attributes email \
  --username-attributes email \
  --policies 'PasswordPolicy={MinimumLength=8,RequireUppercase=true,RequireLowercase=true,RequireNumbers=true,RequireSymbols=false}' \
  --lambda-config "PostConfirmation=$(function_arn post-confirmation)" \
  --email-verification-subject "Your verification code" \
  --email-verification-message "Your verification code is <strong>{####}</strong>" \
  --query UserPool.Id)
client_id=$(aws_ cognito-idp create-user-pool-client --user-pool-id "$pool_id" --client-name "${prefix}-web" \
  --explicit-auth-flows ALLOW_USER_PASSWORD_AUTH ALLOW_REFRESH_TOKEN_AUTH --query UserPoolClient.ClientId)
aws_ lambda add-permission --function-name "${prefix}-post-confirmation" --statement-id "cognito-${pool_id}" \
  --action lambda:InvokeFunction --principal cognito-idp.amazonaws.com \
  --source-arn "arn:aws:cognito-idp:${region}:${account}:userpool/${pool_id}" >/dev/null
pool_environment=",\"COGNITO_USER_POOL_ID\":\"${pool_id}\",\"COGNITO_CLIENT_ID\":\"${client_id}\""
create_function auth "$role" 15 256 "$pool_environment"
create_function me "$role" 10 256 "$pool_environment"

# API
api_id=$(aws_ apigateway create-rest-api --name "${prefix}-api" --description "REST API of the tutor system" --query id)
root_id=$(aws_ apigateway get-resources --rest-api-id "$api_id" --query 'items[?path==`/`].id')
api_resource=$(aws_ apigateway create-resource --rest-api-id "$api_id" --parent-id "$root_id" --path-part api --query id)
auth_resource=$(aws_ apigateway create-resource --rest-api-id "$api_id" --parent-id "$api_resource" --path-part auth --query id)
add_route() {  # parent resource, path part, method, function short name
  local resource
  resource=$(aws_ apigateway create-resource --rest-api-id "$api_id" --parent-id "$1" --path-part "$2" --query id)
  aws_ apigateway put-method --rest-api-id "$api_id" --resource-id "$resource" --http-method "$3" \
    --authorization-type NONE >/dev/null
  aws_ apigateway put-integration --rest-api-id "$api_id" --resource-id "$resource" --http-method "$3" \
    --type AWS_PROXY --integration-http-method POST \
    --uri "arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/$(function_arn "$4")/invocations" >/dev/null
}
add_route "$api_resource" health GET health
add_route "$api_resource" me GET me
for action in register confirm login resend forgot-password reset-password; do
  add_route "$auth_resource" "$action" POST auth
done
for short in health auth me; do
  aws_ lambda add-permission --function-name "${prefix}-${short}" --statement-id "apigateway-${api_id}" \
    --action lambda:InvokeFunction --principal apigateway.amazonaws.com \
    --source-arn "arn:aws:execute-api:${region}:${account}:${api_id}/*" >/dev/null
done
aws_ apigateway create-deployment --rest-api-id "$api_id" --stage-name local >/dev/null

# Email
aws_ ses verify-email-identity --email-address noreply@know-it-all-tutor.com

# Database
aws_ rds create-db-instance --db-instance-identifier "${prefix}-db" --engine postgres \
  --db-instance-class db.t3.micro --port "$DB_PORT" --db-name "$DB_NAME" --master-username "$DB_USER" \
  --master-user-password "$DB_PASSWORD" --allocated-storage 20 >/dev/null

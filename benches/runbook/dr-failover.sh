#!/bin/bash
# The runbook's dr-failover.sh (DESIGN.md's source runbook), its AWS, health and notification parts:
# Route53, the RDS promotion and its wait, the secret, the health check and the webhook. The
# kubectl steps are left out (no cluster in this benchmark; drctl's plan leaves them out too).
# Differences from the runbook, all forced by the emulator: the zone id is moto's ($ZONE_ID), the
# health and webhook URLs are a local server's ($HEALTH_URL, $WEBHOOK_URL), and every `aws` call
# goes to moto through AWS_ENDPOINT_URL.

set -e

echo "=== DISASTER RECOVERY FAILOVER ==="
echo "Primary Region: us-east-1"
echo "DR Region: us-west-2"
echo ""
read -p "Are you sure you want to proceed? (type YES): " confirm

if [ "$confirm" != "YES" ]; then
  echo "Failover cancelled"
  exit 1
fi

# 1. Update DNS to point to DR region
echo "Step 1: Updating Route53 DNS..."
aws route53 change-resource-record-sets \
  --hosted-zone-id "$ZONE_ID" \
  --change-batch '{
    "Changes": [{
      "Action": "UPSERT",
      "ResourceRecordSet": {
        "Name": "api.example.com",
        "Type": "A",
        "AliasTarget": {
          "HostedZoneId": "Z0987654321XYZ",
          "DNSName": "dr-lb.us-west-2.elb.amazonaws.com",
          "EvaluateTargetHealth": true
        }
      }
    }]
  }'

# 2. Promote RDS read replica to master
echo "Step 2: Promoting read replica to master..."
aws rds promote-read-replica \
  --db-instance-identifier portfolio-dr-replica \
  --region us-west-2

# Wait for promotion
aws rds wait db-instance-available \
  --db-instance-identifier portfolio-dr-replica \
  --region us-west-2

# 3. Update application configuration
echo "Step 3: Updating application configuration..."
# Retrieve database credentials from AWS Secrets Manager
DB_URL=$(aws secretsmanager get-secret-value \
  --secret-id dr-database-url \
  --region us-west-2 \
  --query SecretString \
  --output text | jq -r .DATABASE_URL)
[ -n "$DB_URL" ]

# 5. Verify health
echo "Step 5: Verifying application health..."
for i in {1..30}; do
  status=$(curl -s -o /dev/null -w "%{http_code}" "$HEALTH_URL")
  if [ "$status" = "200" ]; then
    echo "✓ Application healthy in DR region"
    break
  fi
  echo "Waiting for application... ($i/30)"
  sleep 2
done

# 7. Notify team
echo "Step 7: Sending notifications..."
curl -s -X POST "$WEBHOOK_URL" \
  -H "Authorization: Bearer $SLACK_TOKEN" \
  -d '{
    "channel": "#incidents",
    "text": "DR FAILOVER COMPLETE\nRegion: us-west-2\nStatus: ACTIVE\nTime: '"$(date)"'"
  }'

echo ""
echo "=== FAILOVER COMPLETE ==="

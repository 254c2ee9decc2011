# RDS PostgreSQL in private subnets, encrypted with the environment's key, TLS enforced, plus a
# Secrets Manager secret holding the application's full database URL.
#
# The master password never enters Terraform state: an ephemeral random password (Secrets Manager
# GetRandomPassword) is written, write-only, both to the instance and to the URL secret in the same
# apply. Bumping password_version rotates both together (see docs/deploy.md).

locals {
  major_version = split(".", var.engine_version)[0]
  log_exports   = ["postgresql", "upgrade"]
}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

# ---------------------------------------------------------------- security groups
# "client" is attached to every component that talks to the database; the database accepts
# PostgreSQL only from members of "client".

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "PostgreSQL of ${var.name}: ingress from the client group only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-db" })
}

resource "aws_security_group" "client" {
  #checkov:skip=CKV2_AWS_5:Attached by the callers (scheduler and API Lambdas, worker service) through the client_security_group_id output; the graph check cannot follow module outputs.
  name        = "${var.name}-db-client"
  description = "Members may reach the PostgreSQL of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-db-client" })
}

resource "aws_security_group_rule" "db_from_client" {
  type                     = "ingress"
  description              = "PostgreSQL from database clients"
  security_group_id        = aws_security_group.db.id
  source_security_group_id = aws_security_group.client.id
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
}

resource "aws_security_group_rule" "client_to_db" {
  type                     = "egress"
  description              = "PostgreSQL to the database"
  security_group_id        = aws_security_group.client.id
  source_security_group_id = aws_security_group.db.id
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
}

# ---------------------------------------------------------------- parameters, logs, monitoring

resource "aws_db_parameter_group" "this" {
  name        = "${var.name}-pg${local.major_version}"
  family      = "postgres${local.major_version}"
  description = "${var.name}: TLS required, DDL and slow statements logged"
  tags        = var.tags

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.slow_query_log_ms)
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "exports" {
  for_each          = toset(local.log_exports)
  name              = "/aws/rds/instance/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count              = var.monitoring_interval > 0 ? 1 : 0
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count      = var.monitoring_interval > 0 ? 1 : 0
  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# ---------------------------------------------------------------- the instance

ephemeral "aws_secretsmanager_random_password" "master" {
  password_length     = 40
  exclude_punctuation = true # the password sits inside a URL
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_name             = var.database_name
  username            = var.username
  password_wo         = ephemeral.aws_secretsmanager_random_password.master.random_password
  password_wo_version = var.password_version
  port                = 5432

  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.db.id]
  publicly_accessible                 = false
  multi_az                            = var.multi_az
  parameter_group_name                = aws_db_parameter_group.this.name
  iam_database_authentication_enabled = true
  ca_cert_identifier                  = var.ca_cert_identifier

  backup_retention_period   = var.backup_retention_days
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = var.skip_final_snapshot ? null : "${var.name}-final"
  delete_automated_backups  = false

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = var.allow_major_version_upgrade
  apply_immediately           = var.apply_immediately

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = var.monitoring_interval
  monitoring_role_arn                   = var.monitoring_interval > 0 ? aws_iam_role.monitoring[0].arn : null
  enabled_cloudwatch_logs_exports       = local.log_exports

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.exports, aws_iam_role_policy_attachment.monitoring]
}

# ---------------------------------------------------------------- the application's URL secret

resource "aws_secretsmanager_secret" "url" {
  #checkov:skip=CKV2_AWS_57:Rotated with the master password by bumping password_version (write-only, runbook in docs/deploy.md); a rotation Lambda would need a second credential store.
  name                    = "${var.name}/database-url"
  description             = "SQLAlchemy URL of the ${var.name} database (CONVEYOR_DATABASE_URL)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "url" {
  secret_id                = aws_secretsmanager_secret.url.id
  secret_string_wo         = "postgresql+psycopg://${var.username}:${ephemeral.aws_secretsmanager_random_password.master.random_password}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${var.database_name}?sslmode=require"
  secret_string_wo_version = var.password_version
}

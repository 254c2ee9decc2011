# One Conveyor environment: network, key, database, queue, secrets, image repositories, workers,
# scheduler, API and alarms. See docs/deploy.md for the order of a first deployment.

locals {
  images = {
    for deployable in ["scheduler", "api", "worker"] :
    deployable => "${module.ecr.repository_urls[deployable]}:${var.image_tag}"
  }
}

module "kms" {
  source                  = "../../modules/kms"
  name                    = var.name
  deletion_window_in_days = var.kms_deletion_window_days
}

module "network" {
  source             = "../../modules/network"
  name               = var.name
  create_vpc         = var.create_vpc
  vpc_cidr           = var.vpc_cidr
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  enable_nat_gateway = var.enable_nat_gateway
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
}

module "database" {
  source                      = "../../modules/database"
  name                        = var.name
  vpc_id                      = module.network.vpc_id
  subnet_ids                  = module.network.private_subnet_ids
  kms_key_arn                 = module.kms.key_arn
  engine_version              = var.db_engine_version
  instance_class              = var.db_instance_class
  multi_az                    = var.db_multi_az
  deletion_protection         = var.deletion_protection
  skip_final_snapshot         = !var.deletion_protection
  password_version            = var.db_password_version
  secret_recovery_window_days = var.secret_recovery_window_days
  log_retention_days          = var.log_retention_days
}

module "queue" {
  source                   = "../../modules/queue"
  name                     = "${var.name}-executions"
  max_step_timeout_seconds = var.max_step_timeout_seconds
  kms_key_arn              = module.kms.key_arn
  emulator_mode            = var.emulator_mode
}

module "secrets" {
  source               = "../../modules/secrets"
  name                 = var.name
  kms_key_arn          = module.kms.key_arn
  recovery_window_days = var.secret_recovery_window_days
}

module "ecr" {
  source       = "../../modules/ecr"
  name         = var.name
  kms_key_arn  = module.kms.key_arn
  force_delete = !var.deletion_protection
}

module "workers" {
  source                       = "../../modules/workers"
  name                         = "${var.name}-workers"
  environment_name             = var.environment
  region                       = var.region
  image_uri                    = local.images["worker"]
  ecr_repository_arn           = module.ecr.repository_arns["worker"]
  vpc_id                       = module.network.vpc_id
  subnet_ids                   = module.network.private_subnet_ids
  security_group_ids           = [module.database.client_security_group_id]
  kms_key_arn                  = module.kms.key_arn
  queue_arn                    = module.queue.queue_arn
  queue_name                   = module.queue.queue_name
  queue_url                    = module.queue.queue_url
  dlq_url                      = module.queue.dlq_url
  visibility_timeout_seconds   = module.queue.visibility_timeout_seconds
  database_url_secret_arn      = module.database.url_secret_arn
  anthropic_api_key_secret_arn = module.secrets.anthropic_api_key_secret_arn
  lambda_function_arns         = var.lambda_function_arns
  desired_count                = var.worker_desired_count
  min_count                    = var.worker_min_count
  max_count                    = var.worker_max_count
  backlog_per_worker_target    = var.backlog_per_worker_target
  log_level                    = var.log_level
  log_retention_days           = var.log_retention_days
  emulator_mode                = var.emulator_mode
}

module "scheduler" {
  source                  = "../../modules/scheduler"
  name                    = "${var.name}-scheduler"
  environment_name        = var.environment
  region                  = var.region
  image_uri               = local.images["scheduler"]
  schedule_expression     = var.scheduler_schedule_expression
  enabled                 = var.scheduler_enabled
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  security_group_ids      = [module.database.client_security_group_id]
  kms_key_arn             = module.kms.key_arn
  queue_arn               = module.queue.queue_arn
  queue_name              = module.queue.queue_name
  queue_url               = module.queue.queue_url
  dlq_url                 = module.queue.dlq_url
  database_url_secret_arn = module.database.url_secret_arn
  ecs_cluster_name        = module.workers.cluster_name
  ecs_service_name        = module.workers.service_name
  ecs_service_arn         = module.workers.service_arn
  log_level               = var.log_level
  log_retention_days      = var.log_retention_days
}

module "api" {
  source                     = "../../modules/api"
  name                       = "${var.name}-api"
  environment_name           = var.environment
  region                     = var.region
  image_uri                  = local.images["api"]
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  security_group_ids         = [module.database.client_security_group_id]
  kms_key_arn                = module.kms.key_arn
  queue_arn                  = module.queue.queue_arn
  queue_name                 = module.queue.queue_name
  queue_url                  = module.queue.queue_url
  dlq_url                    = module.queue.dlq_url
  database_url_secret_arn    = module.database.url_secret_arn
  webhook_secrets_secret_arn = module.secrets.webhook_secrets_secret_arn
  reserved_concurrency       = var.api_reserved_concurrency
  jwt_issuer                 = var.jwt_issuer
  jwt_audience               = var.jwt_audience
  log_level                  = var.log_level
  log_retention_days         = var.log_retention_days
}

module "alarms" {
  source                  = "../../modules/alarms"
  name                    = "${var.name}-alarms"
  kms_key_arn             = module.kms.key_arn
  email_addresses         = var.alarm_email_addresses
  queue_name              = module.queue.queue_name
  dlq_name                = module.queue.dlq_name
  scheduler_function_name = module.scheduler.function_name
  api_id                  = module.api.api_id
  api_stage_name          = module.api.stage_name
}

from ecips_common.migrations import run_env
from ecips_rules.models import Base

run_env(Base.metadata)

from ecips_common.migrations import run_env
from ecips_coordination.models import Base

run_env(Base.metadata)

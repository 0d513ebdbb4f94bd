from ecips_common.migrations import run_env
from ecips_publicity.models import Base

run_env(Base.metadata)

from nemo_server.common.migrations import run_env
from nemo_server.gateway.models import Base

run_env(Base.metadata)

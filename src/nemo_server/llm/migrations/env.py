from nemo_server.common.migrations import run_env
from nemo_server.llm.models import Base

run_env(Base.metadata)

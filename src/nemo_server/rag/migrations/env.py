from nemo_server.common.migrations import run_env
from nemo_server.rag.models import Base

run_env(Base.metadata)

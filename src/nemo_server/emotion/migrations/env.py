from nemo_server.common.migrations import run_env
from nemo_server.emotion.models import Base

run_env(Base.metadata)

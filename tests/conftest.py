import atexit
import os
import shutil
import tempfile

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Each test process (one per pytest-xdist worker) gets its own Prefect home: flows run without a
# server use an ephemeral one whose SQLite database lives there, and two workers must not share it
# (nor write into the user's ~/.prefect).
_prefect_home = tempfile.mkdtemp(prefix=f"eae-prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
atexit.register(shutil.rmtree, _prefect_home, True)
os.environ["PREFECT_HOME"] = _prefect_home

"""Importing and using fastmlp leaves the rest of the process as it was:
os.environ, and the thread pools of the BLAS libraries loaded."""

import json
import subprocess
import sys

# threadpoolctl's import sets KMP_DUPLICATE_LIB_OK (scikit-learn's does too):
# threadpoolctl's default, not fastmlp's.
PROBE = """
import json, os
before = dict(os.environ)
import numpy as np
import threadpoolctl
ours = {"KMP_DUPLICATE_LIB_OK"}
pools = lambda: sorted((i["filepath"], i["num_threads"]) for i in threadpoolctl.threadpool_info())
import fastmlp
after_import = dict(os.environ)
pools_after_import = pools()
X = np.random.default_rng(0).random((64, 5), dtype=np.float32)
fastmlp.MLP((5, 4, 3), seed=0).fit(X, np.arange(64) % 3, epochs=2, batch_size=8,
                                   verbose=0, n_threads=1)
fastmlp.MLPClassifier((4,), solver="lbfgs", max_iter=5).fit(X, np.arange(64) % 3)
print(json.dumps({
    "import": sorted(k for k in set(before) ^ set(after_import) if k not in ours)
              + sorted(k for k in set(before) & set(after_import) if before[k] != after_import[k]),
    "fit": sorted(k for k in set(after_import) ^ set(os.environ))
           + sorted(k for k in set(after_import) & set(os.environ)
                    if after_import[k] != os.environ[k]),
    "pools_import": pools_after_import, "pools_fit": pools()}))
"""


def test_import_and_fit_leave_environment_and_thread_pools_alone():
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True,
                         text=True).stdout
    report = json.loads(out.splitlines()[-1])
    assert report["import"] == [], "import fastmlp changed os.environ"
    assert report["fit"] == [], "MLP.fit changed os.environ"
    # a fit at 1 thread limits BLAS while it runs and restores it afterwards;
    # libraries the fit loaded (Numba's OpenMP runtime) are not compared
    after_fit = dict(map(tuple, report["pools_fit"]))
    for path, threads in report["pools_import"]:
        assert after_fit[path] == threads, path


def test_overlapping_blas_limits_leave_the_counts_as_they_were():
    import threading

    import scipy.linalg.cython_blas  # noqa: F401  the limit loads SciPy's BLAS, which fastmlp calls
    import threadpoolctl

    from fastmlp import threads

    def counts():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = counts()
    second_in, first_out, inside = threading.Event(), threading.Event(), []

    def second():  # starts inside the first block, ends after it
        with threads.blas_on_one_thread():
            second_in.set()
            first_out.wait()
    helper = threading.Thread(target=second)
    with threads.blas_on_one_thread():
        inside.append(counts())
        helper.start()
        second_in.wait()
    first_out.set()
    helper.join()
    assert set(inside[0]) == {1}
    assert counts() == before

"""Does a PyTorch or NumPy program run as fast when it also uses fastmlp?

    python benchmarks/side_effects.py [--repeats 5]

Each case is a fresh process timing its own work (medians of 10 runs after a
warm-up), started in turns within each repeat:

- ``torch``: epochs of the 784-256-128-10 relu net at batch 128 with PyTorch
  eager (2 threads), on 20,000 random images;
- ``numpy``: float32 products of (512, 784) by (784, 256) with NumPy;

each alone, after ``import fastmlp`` (before the other library's import, as
a user's imports may come), and after a fastmlp fit in the same process.
Prints the median seconds and the ratio to the case alone: 1.00 means no
effect.
"""

import argparse
import subprocess
import sys
import time

import numpy as np

WORK = {
    "torch": """
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
X, y = torch.rand(20000, 784), torch.randint(0, 10, (20000,))
model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                            torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

def work():
    for s in range(0, 20000, 128):
        loss = torch.nn.functional.cross_entropy(model(X[s:s + 128]), y[s:s + 128])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
""",
    "numpy": """
import numpy as np
a, b = np.ones((512, 784), np.float32), np.ones((784, 256), np.float32)

def work():
    for _ in range(200):
        a @ b
""",
}
BEFORE = {
    "alone": "",
    "import fastmlp first": "import fastmlp\n",
    "after a fastmlp fit": """
import fastmlp, numpy
r = numpy.random.default_rng(0)
fastmlp.MLP((784, 256, 128, 10), seed=0).fit(r.random((2000, 784), dtype=numpy.float32),
                                             r.integers(0, 10, 2000), epochs=2, verbose=0)
""",
}
TIMING = """
import time
work()
times = []
for _ in range(10):
    started = time.perf_counter()
    work()
    times.append(time.perf_counter() - started)
print(sorted(times)[5])
"""


def run(work, before):
    program = BEFORE[before] + WORK[work] + TIMING
    out = subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                         text=True).stdout
    return float(out.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| work | case | seconds | ratio to alone |\n|---|---|---:|---:|")
    for work in WORK:
        seconds = {before: [] for before in BEFORE}
        for _ in range(args.repeats):
            for before in BEFORE:
                time.sleep(1)
                seconds[before].append(run(work, before))
        alone = np.array(seconds["alone"])
        for before, values in seconds.items():
            print(f"| {work} | {before} | {np.median(values):.4f} | "
                  f"{np.median(np.array(values) / alone):.2f} |", flush=True)


if __name__ == "__main__":
    main()

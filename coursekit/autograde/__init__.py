"""Host-side grading: what runs in the instructor's process, never in a student's kernel.

- `sandbox`: the OS sandbox every graded kernel runs in (bubblewrap, its own uid, cgroup limits).
- `bounds`: nbgrader's Execute with time, memory and output limits (`BoundedExecute`).
- `restore`: puts back the instructor's cells before a submission runs.
- `audit`: a static reading of student cells, as advice (`coursekit audit`).
- `intake`: submissions refused before nbgrader sees them (links, damaged or oversized notebooks).
- `runner`: grading a class, serially or with parallel workers; feedback for a class.
- `versions`: which version of a lesson the gradebook's scores were graded against.
- `results`: what each graded notebook failed on (checks, limits), kept for `coursekit report`.
- `feedback`: what feedback shows of test cells (the hint, never hidden tests).

The kernel-side helpers that test cells call are `coursekit.grading`.
"""

"""`make cluster-test`: the project as a cluster on this machine, broken on a schedule under load
(issue 17). `python -m tests.cluster` drives it; processes.py holds the process definitions that
docs/DEPLOY.md refers to, locustfile.py the load."""

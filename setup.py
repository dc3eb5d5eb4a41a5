from setuptools import find_packages, setup

setup(
    name="fullbay_dagster",
    version="0.1.0",
    description="Fullbay invoices (work orders) into PostgreSQL/RDS, orchestrated by Dagster",
    python_requires=">=3.11,<3.14",
    packages=find_packages(exclude=["fullbay_dagster_tests*"]),
    package_data={"fullbay_dagster.warehouse": ["migrations/script.py.mako"]},
    install_requires=[
        # The Dagster family moves together: dagster-aws / dagster-postgres 0.29.N
        # require exactly dagster 1.13.N (unpinned, pip backtracks to 2021 releases).
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-graphql==1.13.27",
        "dagster-pipes==1.13.27",
        "dagster-shared==1.13.27",
        "dagster-postgres==0.29.27",
        "dagster-aws==0.29.27",
        "requests>=2.32,<3",
        # Parses Fullbay's pages and writes the spool several times faster than the
        # standard library's json (Rust, widely used, wheels for every platform).
        "orjson>=3.10,<4",
        "tenacity>=9,<10",
        "pandas>=2.2,<4",
        "tabulate>=0.9",
        "sqlalchemy>=2.0.30,<2.2",
        "alembic>=1.13,<2",
        "psycopg2-binary>=2.9.9,<3",
        "boto3>=1.34",
    ],
    extras_require={
        "dev": [
            "pytest>=8,<10",
            "pytest-timeout>=2.3",
            "ruff==0.17.6",
            "mypy>=1.13",
            "types-requests",
            "hypothesis>=6.100",
            # moto's threaded server, shared by the tests and the run workers they start
            "moto[server,awslambda,ec2,ecs,secretsmanager,sns,sqs,cloudwatch,iam]==5.2.5",
            "cfn-lint==1.58.0",
            "matplotlib>=3.8",
            # Dagster's `dg` CLI (dg dev, dg check defs, dg launch): same family as dagster
            "dagster-dg-cli==1.13.27",
            # scripts/ui_check.py drives the UI in the system's Chromium
            "playwright>=1.40",
            # benchmarks/e2e.py: peak RSS of each process tree
            "psutil>=5.9",
        ]
    },
    entry_points={
        "console_scripts": [
            "fullbay-demo=fullbay_dagster.demo:main",
            "fullbay-simulator=fullbay_dagster.fullbay.simulator:main",
            "fullbay-replay=fullbay_dagster.aws.replay:main",
        ]
    },
)

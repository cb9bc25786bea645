import setuptools

setuptools.setup(
    name='inflight',
    version='0.1.0',
    description='In-flight RPC latency probe for oslo.messaging services',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.11',
    packages=setuptools.find_packages(include=['inflight', 'inflight.*']),
    install_requires=[
        'oslo.config>=10.0',
        'oslo.db>=17.0',
        'oslo.log>=7.0',
        'oslo.messaging>=18.0',
        'oslo.service[threading]>=4.8',
        'oslo.utils>=8.0',
        'eventlet>=0.40',
        'statsd>=4.0',
        'prometheus-client>=0.20',
        'SQLAlchemy>=2.0',
        'PyMySQL>=1.1',
        'psycopg2-binary>=2.9',
        'rich>=13',
        'tooz>=9.1',
        'redis>=5.0',
    ],
    extras_require={
        'test': ['pytest>=8', 'pytest-timeout>=2.3', 'pytest-xdist>=3.5',
                 'hypothesis>=6.100'],
    },
    entry_points={
        'console_scripts': [
            'nova-inflight = inflight.cmd.inflight:main',
            'inflight = inflight.cmd.manage:main',
        ],
        'oslo.config.opts': [
            'inflight = inflight.opts:list_opts',
        ],
        # [oslo_messaging_notifications] driver = inflight, in a service's
        # configuration: its RPC servers answer inflight probes.
        'oslo.messaging.notify.drivers': [
            'inflight = inflight.hook:Driver',
        ],
    },
    classifiers=[
        'Environment :: OpenStack',
        'Programming Language :: Python :: 3.11',
    ],
)

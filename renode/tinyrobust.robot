*** Comments ***
Runs the NUCLEO-H743ZI tinyrobust firmware ELF under Renode and checks it through the wire protocol.
Run with Renode's test runner:
    renode-test renode/tinyrobust.robot --variable ELF:/abs/firmware.elf --variable GOLDEN:/abs/golden.json
GOLDEN is written by: python -m tinyrobust.targets.renode golden --qemu-elf QEMU.elf -o golden.json

*** Settings ***
# Renode's runner gives every test without a setup/teardown of its own 'Reset Emulation' before it and
# a teardown that ends in 'Reset Emulation', which would clear a machine booted once for the suite.
# So each test boots its own machine here and tears it down itself (tests/targets/test_renode_suite.py
# checks this with Robot Framework's parser). The suite setup/teardown start and stop Renode itself.
Suite Setup       Setup
Suite Teardown    Teardown
Test Setup        Boot Firmware
Test Teardown     Shut Down Firmware
Resource          ${RENODEKEYWORDS}
Library           ${CURDIR}/tinyrobust_keywords.py

*** Variables ***
${ELF}            ${CURDIR}/../build/nucleo_h743zi/firmware.elf
${GOLDEN}         ${CURDIR}/../build/nucleo_h743zi/golden.json
${PORT}           34561

*** Keywords ***
Boot Firmware
    # Same platform script the RenodeTarget uses; variables first so its '?=' defaults yield.
    Execute Command           $elf=@${ELF}
    Execute Command           $port=${PORT}
    Execute Command           include @${CURDIR}/nucleo_h743zi.resc
    Start Emulation
    Connect To Firmware       ${PORT}

Shut Down Firmware
    # The host closes first, so the port's TIME_WAIT stays on the client side and the next test's
    # server socket binds the same port.
    Disconnect From Firmware
    # Renode's own test teardown: keeps the log of a failed test, then resets the emulation.
    Test Teardown

*** Test Cases ***
Firmware Answers Hello With The Exported Model Hash
    Hello Should Match Golden               ${GOLDEN}

Golden Inferences Are Bit Exact
    Golden Infers Should Match              ${GOLDEN}

Profile Reports Every Layer
    Profile Should Cover Every Layer        ${GOLDEN}

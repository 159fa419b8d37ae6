// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title RoundsManager (minimal)
/// @notice The part of Livepeer's RoundsManager that the TicketBroker reads: the current round,
/// counted in blocks, and a block hash that pins each round. No bonding, no minting.
contract RoundsManager {
    address public owner;
    uint256 public roundLength;
    // A change of length takes effect from the round it is made in, so rounds stay contiguous:
    // round r starts at lastRoundLengthUpdateStartBlock + (r - lastRoundLengthUpdateRound) * roundLength.
    uint256 public lastRoundLengthUpdateRound;
    uint256 public lastRoundLengthUpdateStartBlock;
    uint256 public lastInitializedRound;
    mapping(uint256 => bytes32) internal storedBlockHash;

    event NewRound(uint256 indexed round, bytes32 blockHash);
    event ParameterUpdate(string param);

    modifier onlyOwner() {
        require(msg.sender == owner, "caller is not the owner");
        _;
    }

    constructor(uint256 _roundLength) {
        require(_roundLength > 0, "round length cannot be 0");
        owner = msg.sender;
        roundLength = _roundLength;
        lastRoundLengthUpdateStartBlock = block.number - (block.number % _roundLength);
        lastRoundLengthUpdateRound = block.number / _roundLength;
    }

    function setRoundLength(uint256 _roundLength) external onlyOwner {
        require(_roundLength > 0, "round length cannot be 0");
        lastRoundLengthUpdateStartBlock = currentRoundStartBlock();
        lastRoundLengthUpdateRound = currentRound();
        roundLength = _roundLength;
        emit ParameterUpdate("roundLength");
    }

    function blockNum() public view returns (uint256) {
        return block.number;
    }

    function currentRound() public view returns (uint256) {
        return lastRoundLengthUpdateRound + (block.number - lastRoundLengthUpdateStartBlock) / roundLength;
    }

    function currentRoundStartBlock() public view returns (uint256) {
        return roundStartBlock(currentRound());
    }

    /// @notice First block of `_round`; 0 for rounds before the last change of length, whose
    /// start is no longer known.
    function roundStartBlock(uint256 _round) public view returns (uint256) {
        if (_round < lastRoundLengthUpdateRound) {
            return 0;
        }
        return lastRoundLengthUpdateStartBlock + (_round - lastRoundLengthUpdateRound) * roundLength;
    }

    /// @notice The hash of the first block of `_round`, stored by initializeRound or, until then,
    /// read from the EVM while that block is among the last 256. Zero when neither is available,
    /// which makes the broker refuse tickets of that round.
    function blockHashForRound(uint256 _round) public view returns (bytes32) {
        bytes32 stored = storedBlockHash[_round];
        if (stored != bytes32(0) || _round > currentRound() || _round < lastRoundLengthUpdateRound) {
            return stored;
        }
        // blockhash() is zero for the current block and for blocks older than 256.
        return blockhash(roundStartBlock(_round));
    }

    function currentRoundInitialized() public view returns (bool) {
        return storedBlockHash[currentRound()] != bytes32(0);
    }

    /// @notice Pins the current round's block hash before it leaves the EVM's 256-block window.
    /// Anyone may call it; it stores the same hash that blockHashForRound already reports.
    function initializeRound() external {
        uint256 round = currentRound();
        require(storedBlockHash[round] == bytes32(0), "round already initialized");
        bytes32 hash = blockhash(roundStartBlock(round));
        require(hash != bytes32(0), "round start block hash unavailable");
        storedBlockHash[round] = hash;
        lastInitializedRound = round;
        emit NewRound(round, hash);
    }
}
